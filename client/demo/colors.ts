/**
 * Cursor colours that stay distinct for a writers' room: each window claims a palette slot
 * in its awareness state, the lowest one nobody else holds, instead of hashing its name
 * (hashing 20 names into any palette collides: the birthday problem). Every window shows
 * the colour a participant announced, so all windows agree on it.
 */

/**
 * 24 colours, in the order they are handed out (each as far from the ones before it as
 * possible, in CIELAB), all dark enough for the white name labels over them (contrast with
 * white at least 3.5:1). Picked by a farthest-point search over HSL; the demo's tests check
 * both properties.
 */
export const PALETTE = [
  '#d7263d', '#1212e2', '#0c970c', '#0f83bd', '#5c4e23', '#760a6d', '#e212e2', '#0c9780',
  '#2b53ca', '#bd740f', '#691624', '#e2128c', '#232d5c', '#75871d', '#23535c', '#235c23',
  '#b15f43', '#7a2bca', '#b14371', '#0a0a76', '#e25812', '#0c9752', '#5c234e', '#97230c',
] as const;

export function colorForSlot(slot: number): string {
  return PALETTE[((slot % PALETTE.length) + PALETTE.length) % PALETTE.length] ?? PALETTE[0];
}

/** The colour at low opacity, for the selection highlight the editors draw. */
export function lightColor(color: string): string {
  return `${color}33`;
}

/**
 * The slot this window should hold. `others` maps every other awareness client id to the
 * slot it announced. A window keeps its slot unless a window with a lower client id holds
 * the same one; two windows that joined at once thus settle in one round, the same way in
 * every window. With more people than colours, the least used slot is shared.
 */
export function chooseSlot(ownId: number, current: number | null, others: ReadonlyMap<number, number>): number {
  if (current !== null && current >= 0 && current < PALETTE.length) {
    const contested = [...others].some(([id, slot]) => slot === current && id < ownId);
    if (!contested) return current;
  }
  const uses = new Array<number>(PALETTE.length).fill(0);
  for (const slot of others.values()) if (slot >= 0 && slot < PALETTE.length) uses[slot] = (uses[slot] ?? 0) + 1;
  let best = 0;
  for (let slot = 1; slot < PALETTE.length; slot++) if ((uses[slot] ?? 0) < (uses[best] ?? 0)) best = slot;
  return best;
}
