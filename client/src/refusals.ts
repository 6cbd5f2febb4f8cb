/**
 * Telling a refused upgrade from a network failure, as far as a browser can. A browser
 * reports both as a close (1006) before the socket opened and hides the HTTP status. Two
 * things it can still learn: whether the endpoint answers plain HTTP at all (a `no-cors`
 * fetch resolves with an opaque response when the server answered anything, and rejects
 * when the network failed: any HTTP status counts, the emulator's 426 as much as whatever
 * API Gateway answers a GET without Upgrade), and whether the token it sent had expired.
 * The probe runs only after several refusals in a row, so it costs at most one request
 * per give-up.
 */

/** Whether the WebSocket endpoint answers HTTP; false when the request itself failed. */
export type ReachabilityProbe = (httpUrl: string) => Promise<boolean>;

const PROBE_TIMEOUT_MS = 5_000;

/** `wss://host/stage` → `https://host/stage`: the same server, over plain HTTP. */
export function probeUrl(serverUrl: string): string {
  return serverUrl.replace(/^ws(s?):\/\//i, 'http$1://');
}

export const fetchProbe: ReachabilityProbe = async (httpUrl) => {
  if (typeof fetch !== 'function') return true; // nothing to ask with: trust the refusals
  try {
    await fetch(httpUrl, {
      mode: 'no-cors',
      cache: 'no-store',
      credentials: 'omit',
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    return true;
  } catch {
    return false;
  }
};

/** The browser says it has no network at all (it never says the opposite reliably). */
export function browserOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

/** The `exp` claim of a JWT, in ms since the epoch, or null when it has none or is no JWT. */
export function tokenExpiry(token: string): number | null {
  const body = token.split('.')[1];
  if (body === undefined) return null;
  try {
    const base64 = body.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(body.length / 4) * 4, '=');
    const claims: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** What to tell a person whose upgrades were refused `attempts` times in a row. */
export function refusalMessage(attempts: number, lastToken: string | null, now = Date.now()): string {
  const expiry = lastToken === null ? null : tokenExpiry(lastToken);
  if (expiry !== null && expiry <= now) {
    return `the server refused ${attempts} connection attempts in a row; the token expired at ${new Date(expiry).toISOString()}: getToken must return a fresh one`;
  }
  return `the server refused ${attempts} connection attempts in a row: the token is invalid, expired or issued for another scene`;
}
