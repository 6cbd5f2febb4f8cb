/**
 * The server's view of who is in the scene, from `connected` (a full list) and the
 * `participant-joined` / `participant-left` messages.
 *
 * These come from different Lambda invocations, so they can arrive out of order: a
 * `connected` list read before someone joined may arrive after their `participant-joined`.
 * Taking the list as it comes would drop them until the next resync. A connection id joins
 * once and leaves once, so the roster keeps the joins it saw since the last list, and every
 * departure it saw on this socket, and applies them over each list.
 */

import type { Participant } from './framing.js';

export class ParticipantRoster {
  private list: Participant[] = [];
  private joinedSinceList = new Map<string, Participant>();
  private readonly departed = new Set<string>();

  get participants(): readonly Participant[] {
    return this.list;
  }

  /** A full list (`connected`). */
  replace(participants: readonly Participant[]): void {
    const listed = new Set(participants.map((p) => p.connectionId));
    const joinedLater = [...this.joinedSinceList.values()].filter((p) => !listed.has(p.connectionId));
    this.list = [...participants, ...joinedLater].filter((p) => !this.departed.has(p.connectionId));
    // The next list will have been read after these joins, or show that they are gone.
    this.joinedSinceList = new Map();
  }

  join(participant: Participant): void {
    if (this.departed.has(participant.connectionId)) return;
    this.joinedSinceList.set(participant.connectionId, participant);
    this.list = [...this.list.filter((p) => p.connectionId !== participant.connectionId), participant];
  }

  leave(participant: Participant): void {
    this.departed.add(participant.connectionId);
    this.joinedSinceList.delete(participant.connectionId);
    this.list = this.list.filter((p) => p.connectionId !== participant.connectionId);
  }

  /** The socket closed: what it said no longer holds. */
  clear(): void {
    this.list = [];
    this.joinedSinceList = new Map();
    this.departed.clear();
  }
}
