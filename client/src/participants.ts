/** The server's view of who is in the scene, kept from `connected` and the join/leave messages. */

import type { Participant } from './framing.js';

/** `list` with `participant` in it once (a repeated join replaces the earlier entry). */
export function withJoined(list: readonly Participant[], participant: Participant): Participant[] {
  return [...list.filter((p) => p.connectionId !== participant.connectionId), participant];
}

export function withLeft(list: readonly Participant[], participant: Participant): Participant[] {
  return list.filter((p) => p.connectionId !== participant.connectionId);
}
