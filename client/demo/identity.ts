/** Who this window is: a name from the query string, or a screenplay character's, and a colour. */

const CHARACTERS = [
  'RICK', 'ILSA', 'LAZLO', 'RENAULT', 'SAM', 'NORMA', 'JOE GILLIS', 'MAX', 'CHARLIE KANE',
  'JANE', 'ELLEN RIPLEY', 'DALLAS', 'MARGE', 'JERRY', 'THELMA', 'LOUISE', 'TRAVIS', 'IRIS',
];

const COLORS = ['#d7263d', '#1b998b', '#2e86ab', '#f46036', '#7b2cbf', '#c5a000', '#2a9d8f', '#e76f51'];

export function nameFromLocation(search: string, random: () => number = Math.random): string {
  const requested = new URLSearchParams(search).get('name')?.trim();
  if (requested) return requested;
  return CHARACTERS[Math.floor(random() * CHARACTERS.length)] ?? 'RICK';
}

/** The same name always gets the same colour, in every window. */
export function colorFor(name: string): string {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + (char.codePointAt(0) ?? 0)) >>> 0;
  return COLORS[hash % COLORS.length] ?? '#2e86ab';
}

/** The colour at low opacity, for the selection highlight y-codemirror draws. */
export function lightColor(color: string): string {
  return `${color}33`;
}
