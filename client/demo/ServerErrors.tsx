import type { ServerError } from '../src/index.js';

/** What the server refused, in words, where the writer sees it. */
export function ServerErrors({ errors }: { errors: readonly ServerError[] }) {
  if (errors.length === 0) return null;
  return (
    <ul className="server-errors" role="alert">
      {errors.map((error, index) => (
        <li key={index}>
          The server refused {error.action ? `an ${error.action}` : 'a message'}: <code>{error.code}</code>{' '}
          {error.message}
        </li>
      ))}
    </ul>
  );
}
