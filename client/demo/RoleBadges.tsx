import type { Role } from '../src/index.js';

/** A viewer's "View only" badge, or whether the writer's edits are stored on the server yet. */
export function RoleBadges({ role, saved }: { role: Role | null; saved: boolean }) {
  if (role === 'viewer') {
    return (
      <span className="badge view-only" role="note" title="You can read this scene and see who is writing, not type">
        View only
      </span>
    );
  }
  if (role === null) return null;
  return (
    <span
      className={`badge saved-indicator ${saved ? 'is-saved' : 'is-saving'}`}
      data-saved={saved}
      aria-live="polite"
      title={saved ? 'Every edit of yours is stored on the server' : 'Some edits of yours are not stored yet'}
    >
      {saved ? 'All changes saved' : 'Saving…'}
    </span>
  );
}
