/** Who this window is: a name from the query string, or a screenplay character's. */

const CHARACTERS = [
  'RICK', 'ILSA', 'LAZLO', 'RENAULT', 'SAM', 'NORMA', 'JOE GILLIS', 'MAX', 'CHARLIE KANE',
  'JANE', 'ELLEN RIPLEY', 'DALLAS', 'MARGE', 'JERRY', 'THELMA', 'LOUISE', 'TRAVIS', 'IRIS',
];

export function nameFromLocation(search: string, random: () => number = Math.random): string {
  const requested = new URLSearchParams(search).get('name')?.trim();
  if (requested) return requested;
  return CHARACTERS[Math.floor(random() * CHARACTERS.length)] ?? 'RICK';
}
