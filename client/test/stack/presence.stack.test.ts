/**
 * Quiet rooms (docs/presence.md) with real y-protocols Awareness in real time against the
 * local stack: renewals are held for rosters, yet no live cursor is ever dropped, and a
 * client that goes silent without closing (a frozen tab) is dropped 30 s after its last
 * renewal, as y-protocols alone would. Slow on purpose: y-protocols' timers are 15 s and 30 s.
 */

import { afterEach, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';

import type { ApiGatewayProvider } from '../../src/index.js';
import { Clients, synced, waitFor } from './clients.js';

const stack = inject('stack');
const clients = new Clients(stack);

afterEach(() => clients.closeAll());

/** `ws` that counts the messages every socket receives. */
class CountingWebSocket extends WebSocket {
  static received = 0;
  static kinds = new Map<string, number>();
  constructor(...args: ConstructorParameters<typeof WebSocket>) {
    super(...args);
    this.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { type: string; ages?: unknown };
      const kind = frame.type + (frame.ages === undefined ? '' : '+ages');
      CountingWebSocket.kinds.set(kind, (CountingWebSocket.kinds.get(kind) ?? 0) + 1);
      // What keeps a quiet room alive: rosters and resync answers. Other tests share the
      // demo scene, and their edits and cursor moves reach these sockets too.
      if (kind === 'awareness+ages' || frame.type === 'synced') CountingWebSocket.received += 1;
    });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Which (viewer, owner) pairs are missing: a viewer that does not hold the owner's state. */
function missing(viewers: ApiGatewayProvider[], owners: ApiGatewayProvider[]): string[] {
  const gaps: string[] = [];
  for (const viewer of viewers) {
    for (const owner of owners) {
      if (owner === viewer) continue;
      if (!viewer.awareness.getStates().has(owner.doc.clientID)) gaps.push(`${viewer.doc.clientID}->${owner.doc.clientID}`);
    }
  }
  return gaps;
}

describe('a quiet room', () => {
  it('keeps every live cursor on held renewals, and drops a frozen one 30 s after its last renewal', async () => {
    const size = 5;
    const room = Array.from({ length: size }, () => clients.open({ WebSocketPolyfill: CountingWebSocket }));
    await synced(...room);
    room.forEach((provider, n) => provider.awareness.setLocalStateField('user', { name: `WRITER ${n}` }));
    await waitFor('every cursor everywhere', () => missing(room, room).length === 0);

    // Only y-protocols' 15 s renewals and the providers' 60 s resyncs from here on.
    CountingWebSocket.received = 0;
    CountingWebSocket.kinds.clear();
    const quietMs = 65_000;
    const started = Date.now();
    const gaps: string[] = [];
    while (Date.now() - started < quietMs) {
      gaps.push(...missing(room, room).map((gap) => `${Date.now() - started} ms: ${gap}`));
      await sleep(500);
    }
    expect(gaps).toEqual([]);
    const received = CountingWebSocket.received;
    // Relaying every renewal alone would deliver size*(size-1) messages per 15 s.
    const relayed = ((size * (size - 1)) / 15) * (quietMs / 1000);
    console.log(`quiet room of ${size}: ${received} messages in ${quietMs / 1000} s (renewals relayed: ${relayed.toFixed(0)} + resyncs)`, Object.fromEntries(CountingWebSocket.kinds));
    expect(received).toBeLessThan(relayed);

    // A frozen tab: its socket stays open (no $disconnect), it sends nothing more.
    const [frozen, ...rest] = room as [ApiGatewayProvider, ...ApiGatewayProvider[]];
    const ws = frozen.ws as WebSocket;
    ws.send = () => {};
    const lastWrite = frozen.awareness.meta.get(frozen.doc.clientID)?.lastUpdated ?? Date.now();
    const dropped = new Map<number, number>();
    while (dropped.size < rest.length && Date.now() - lastWrite < 45_000) {
      for (const viewer of rest) {
        if (!dropped.has(viewer.doc.clientID) && !viewer.awareness.getStates().has(frozen.doc.clientID)) {
          dropped.set(viewer.doc.clientID, Date.now() - lastWrite);
        }
      }
      expect(missing(rest, rest)).toEqual([]); // the live ones keep each other
      await sleep(250);
    }
    expect(dropped.size).toBe(rest.length);
    // y-protocols drops at its first 3 s check after 30 s; a second for delivery.
    for (const after of dropped.values()) expect(after).toBeLessThanOrEqual(34_000);
  }, 180_000);
});
