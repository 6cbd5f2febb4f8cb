/** Reconnect delays: exponential growth, a ceiling, and jitter. */

export interface BackoffOptions {
  /** The ceiling of the first retry, in ms. */
  initialDelay: number;
  /** No delay ever exceeds this, in ms. */
  maxDelay: number;
  /** A source of numbers in [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0-based). "Equal jitter": half of the ceiling is
 * fixed, so a retry never fires at once against a server that just refused us, and half is
 * random, so the clients that one gateway restart disconnected do not all return together.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const { initialDelay, maxDelay, random = Math.random } = options;
  // 2 ** attempt overflows to Infinity for huge attempts; Math.min still yields maxDelay.
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** Math.max(0, attempt));
  return ceiling / 2 + (random() * ceiling) / 2;
}
