import type { Participant } from '../src/index.js';

interface ParticipantsListProps {
  participants: readonly Participant[];
  ownConnectionId: string | null;
  /** The colour each name announced in awareness (useAwarenessUser). */
  colors: ReadonlyMap<string, string>;
}

const NO_COLOR_YET = '#9ca3af';

/** Everyone the server says is in the scene, in the colour of their cursor. */
export function ParticipantsList({ participants, ownConnectionId, colors }: ParticipantsListProps) {
  return (
    <section className="participants" aria-labelledby="participants-heading">
      <h2 id="participants-heading">In this scene ({participants.length})</h2>
      <ul>
        {participants.map((p) => (
          <li key={p.connectionId} data-connection-id={p.connectionId}>
            <span
              className="swatch"
              style={{ backgroundColor: colors.get(p.userName) ?? NO_COLOR_YET }}
              aria-hidden="true"
            />
            <span className="participant-name">{p.userName}</span>
            {p.connectionId === ownConnectionId && <span className="you"> (you)</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}
