/**
 * A WebSocket double for unit tests of the provider's state machine: the test plays the
 * server's side frame by frame. It is not a server; the tests under test/stack run the
 * provider against the real local stack.
 */

import type { CloseEventLike, MessageEventLike, WebSocketLike } from '../../src/websocket.js';

type Handler<E> = ((event: E) => void) | null;

export class ScriptedSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  closedWith: number | undefined;
  onopen: Handler<unknown> = null;
  onmessage: Handler<MessageEventLike> = null;
  onclose: Handler<CloseEventLike> = null;
  onerror: Handler<unknown> = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedWith = code;
    this.onclose?.({ code, reason });
  }

  // The server's side:

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(message: object | string): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /** A refused upgrade as a browser sees it: an error, then 1006, never open. */
  refuseUpgrade(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: '' });
  }

  /** The server ends the connection (API Gateway's 2 h limit, or a DELETE @connections). */
  serverClose(code = 1001): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: 'Going away' });
  }

  frames(): Record<string, unknown>[] {
    return this.sent.map((text) => JSON.parse(text) as Record<string, unknown>);
  }

  actions(): string[] {
    return this.frames().map((frame) => String(frame['action']));
  }
}

/** A WebSocketPolyfill whose sockets the test can reach. */
export function scriptedSockets() {
  const sockets: ScriptedSocket[] = [];
  class Polyfill extends ScriptedSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return {
    WebSocketPolyfill: Polyfill,
    sockets,
    last(): ScriptedSocket {
      const socket = sockets.at(-1);
      if (socket === undefined) throw new Error('no socket was opened');
      return socket;
    },
  };
}
