/**
 * The part of a WebSocket the provider uses, so that the browser's WebSocket and Node's
 * `ws` package both fit without casts.
 */

/**
 * A handler type that accepts handlers declared for a more specific event (the browser's
 * MessageEvent, ws's own event classes). Function-typed properties are checked
 * contravariantly under `strictFunctionTypes`; method parameters are not, so the handler is
 * typed as a method.
 */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

export interface MessageEventLike {
  data: unknown;
}

export interface CloseEventLike {
  code: number;
  reason: string;
}

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<MessageEventLike> | null;
  onclose: Handler<CloseEventLike> | null;
  onerror: Handler<unknown> | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `readyState` of an open socket (the same constant in every implementation). */
export const OPEN = 1;

export function defaultWebSocket(): WebSocketConstructor {
  const candidate = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (candidate === undefined) {
    throw new Error('no global WebSocket here: pass the `ws` package as the WebSocketPolyfill option');
  }
  return candidate;
}
