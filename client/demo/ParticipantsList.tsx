import type { Participant } from '../src/index.js';
import { colorFor } from './identity.js';

interface ParticipantsListProps {
  participants: readonly Participant[];
  ownConnectionId: string | null;
}

/** Everyone the server says is in the scene, in the colour of their cursor. */
export function ParticipantsList({ participants, ownConnectionId }: ParticipantsListProps) {
  return (
    <section className="participants" aria-labelledby="participants-heading">
      <h2 id="participants-heading">In this scene ({participants.length})</h2>
      <ul>
        {participants.map((p) => (
          <li key={p.connectionId} data-connection-id={p.connectionId}>
            <span className="swatch" style={{ backgroundColor: colorFor(p.userName) }} aria-hidden="true" />
            <span className="participant-name">{p.userName}</span>
            {p.connectionId === ownConnectionId && <span className="you"> (you)</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}
