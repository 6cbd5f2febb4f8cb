/**
 * Fewer messages per keystroke (issue 11): an edit and its cursor move leave as one
 * `update` frame, cursor-only changes are throttled, the periodic sync asks for one
 * combined answer, and the awareness ages the server sends set y-protocols' timeout.
 */

import { Buffer } from 'node:buffer';

import * as encoding from 'lib0/encoding';
import * as time from 'lib0/time';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';

import { awarenessData } from '../../src/payloads.js';
import { b64, connected, Harness, me, settle } from './providerHarness.js';

let harness: Harness;

beforeEach(() => {
  vi.useFakeTimers();
  harness = new Harness();
});

afterEach(() => {
  harness.destroy();
  vi.useRealTimers();
});

function serverSync(write: (encoder: encoding.Encoder) => void): string {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  write(encoder);
  return b64(encoding.toUint8Array(encoder));
}

async function admitted(options = {}) {
  const started = harness.start(options);
  await settle();
  const socket = harness.last();
  socket.open();
  socket.receive(connected());
  socket.receive({ type: 'sync', data: serverSync((e) => syncProtocol.writeSyncStep2(e, new Y.Doc())) });
  await settle(200);
  socket.sent.length = 0;
  return { ...started, socket };
}

/** A peer's awareness (its own doc and client id), for frames "from the server". */
function peer(state: Record<string, unknown>) {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc());
  awareness.setLocalState(state);
  return awareness;
}

describe('ApiGatewayProvider: one frame per keystroke', () => {
  it('sends an edit and the cursor move of the same moment as one update frame', async () => {
    const { provider, doc, socket } = await admitted();
    doc.getText('t').insert(0, 'RICK: ');
    provider.awareness.setLocalStateField('cursor', { anchor: 6 });
    await settle();
    const frames = socket.frames();
    expect(frames.map((f) => f['action'])).toEqual(['update']);
    const there = new awarenessProtocol.Awareness(new Y.Doc());
    const data = Buffer.from(String(frames[0]?.['awareness']), 'base64');
    awarenessProtocol.applyAwarenessUpdate(there, data.subarray(2), 'server'); // [1, varUint8Array]
    expect(there.getStates().get(doc.clientID)).toEqual({ cursor: { anchor: 6 } });
  });

  it('merges the edits of one task into one update', async () => {
    const { doc, socket } = await admitted();
    doc.getText('t').insert(0, 'a');
    doc.getText('t').insert(1, 'b');
    doc.getText('t').insert(2, 'c');
    await settle();
    const updates = socket.frames().filter((f) => f['action'] === 'update');
    expect(updates).toHaveLength(1);
    const server = new Y.Doc();
    const bytes = Buffer.from(String(updates[0]?.['data']), 'base64');
    Y.applyUpdate(server, bytes.subarray(3)); // [0, 2, varUint8Array] with a one-byte length
    expect(server.getText('t').toString()).toBe('abc');
  });

  it('sends cursor-only moves at most once per awarenessThrottle, the last state winning', async () => {
    const { provider, socket } = await admitted({ awarenessThrottle: 80 });
    for (let i = 1; i <= 10; i += 1) {
      provider.awareness.setLocalStateField('cursor', { anchor: i });
      await settle(10);
    }
    await settle(200);
    const sent = socket.frames().filter((f) => f['action'] === 'awareness');
    expect(sent.length).toBeLessThanOrEqual(3); // 10 moves over 100 ms
    const there = new awarenessProtocol.Awareness(new Y.Doc());
    for (const frame of sent) {
      awarenessProtocol.applyAwarenessUpdate(there, Buffer.from(String(frame['data']), 'base64').subarray(2), 's');
    }
    expect(there.getStates().get(provider.doc.clientID)).toEqual({ cursor: { anchor: 10 } });
  });

  it('sends edits at most once per updateThrottle, merged, the first after a pause at once', async () => {
    const { provider, doc, socket } = await admitted({ updateThrottle: 200 });
    const text = doc.getText('t');
    const updates = () => socket.frames().filter((f) => f['action'] === 'update');
    text.insert(0, 'R');
    await settle();
    expect(updates()).toHaveLength(1); // after a pause: at the end of its task
    for (const letter of 'ICK') {
      await settle(40);
      text.insert(text.length, letter);
      provider.awareness.setLocalStateField('cursor', { anchor: text.length });
    }
    await settle(50);
    expect(updates()).toHaveLength(1); // 170 ms in: still held
    await settle(40);
    const sent = updates();
    expect(sent).toHaveLength(2); // 200 ms after the first: the three letters in one frame
    const server = new Y.Doc();
    for (const frame of sent) {
      Y.applyUpdate(server, Buffer.from(String(frame['data']), 'base64').subarray(3));
    }
    expect(server.getText('t').toString()).toBe('RICK');
    const there = new awarenessProtocol.Awareness(new Y.Doc());
    const awareness = Buffer.from(String(sent[1]?.['awareness']), 'base64').subarray(2);
    awarenessProtocol.applyAwarenessUpdate(there, awareness, 'server');
    expect(there.getStates().get(doc.clientID)).toEqual({ cursor: { anchor: 4 } }); // rode along
    expect(socket.frames().filter((f) => f['action'] === 'awareness')).toHaveLength(0);
    await settle(500);
    text.insert(4, '!');
    await settle();
    expect(updates()).toHaveLength(3); // a pause again: at once
  });

  it('sends every edit at the end of its task by default', async () => {
    const { doc, socket } = await admitted();
    const text = doc.getText('t');
    for (const letter of 'RICK') {
      text.insert(text.length, letter);
      await settle(10);
    }
    expect(socket.frames().filter((f) => f['action'] === 'update')).toHaveLength(4);
  });

  it('sends the removal of its own state at once, before the socket closes', async () => {
    const { provider, socket } = await admitted();
    const own = provider.doc.clientID;
    provider.destroy();
    const last = socket.frames().filter((f) => f['action'] === 'awareness').at(-1);
    const there = new awarenessProtocol.Awareness(new Y.Doc());
    const bytes = Buffer.from(String(last?.['data']), 'base64').subarray(2);
    awarenessProtocol.applyAwarenessUpdate(there, bytes, 'server');
    expect(there.meta.get(own)).toBeDefined(); // it was about us...
    expect(there.getStates().has(own)).toBe(false); // ...and removes our state
  });
});

describe('ApiGatewayProvider: combined sync answers and awareness ages', () => {
  it('asks for a combined answer and handles all of its parts', async () => {
    const { provider, doc, socket } = await admitted();
    await settle(60_000); // the periodic resync
    const sync = socket.frames().find((f) => f['action'] === 'sync');
    expect(sync?.['combined']).toBe(true);
    const server = new Y.Doc();
    server.getText('t').insert(0, 'INT. RICK\'S CAFE');
    const rick = peer({ user: { name: 'RICK' } });
    const rickParticipant = { connectionId: 'c-rick', userId: 'u-rick', userName: 'RICK' };
    socket.receive({
      ...connected(),
      participants: [me, rickParticipant],
      type: 'synced',
      data: serverSync((e) => syncProtocol.writeSyncStep2(e, server, Y.encodeStateVector(doc))),
      stateVector: serverSync((e) => syncProtocol.writeSyncStep1(e, server)),
      awareness: awarenessData(rick, [rick.clientID]),
      ages: { [String(rick.clientID)]: 12_000 },
    });
    expect(doc.getText('t').toString()).toBe("INT. RICK'S CAFE");
    expect(provider.participants.map((p) => p.userName)).toEqual(['ILSA', 'RICK']);
    expect(provider.awareness.getStates().get(rick.clientID)).toEqual({ user: { name: 'RICK' } });
    // Stored 12 s ago: y-protocols (on lib0's clock) counts its 30 s from then, not from now.
    const lastUpdated = provider.awareness.meta.get(rick.clientID)?.lastUpdated ?? 0;
    expect(time.getUnixTime() - lastUpdated).toBeGreaterThanOrEqual(12_000);
    expect(time.getUnixTime() - lastUpdated).toBeLessThan(12_500);
  });

  it('applies a peer edit and its cursor from one update frame, edit first', async () => {
    const { provider, doc, socket } = await admitted();
    const other = new Y.Doc();
    other.getText('t').insert(0, 'LOUIS');
    const louis = peer({ cursor: { anchor: 5 } });
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(other));
    const seen: string[] = [];
    provider.awareness.on('change', () => seen.push(doc.getText('t').toString()));
    socket.receive({
      type: 'update',
      data: b64(encoding.toUint8Array(encoder)),
      awareness: awarenessData(louis, [louis.clientID]),
    });
    expect(doc.getText('t').toString()).toBe('LOUIS');
    expect(provider.awareness.getStates().get(louis.clientID)).toEqual({ cursor: { anchor: 5 } });
    expect(seen).toEqual(['LOUIS']); // the cursor arrived after the text it points into
  });

  it('refreshes a state a roster repeats with the same clock, by its age', async () => {
    const { provider, socket } = await admitted();
    const sam = peer({ user: { name: 'SAM' } });
    const frame = { type: 'awareness', data: awarenessData(sam, [sam.clientID]) };
    const age = () => time.getUnixTime() - (provider.awareness.meta.get(sam.clientID)?.lastUpdated ?? 0);
    socket.receive({ ...frame, ages: { [String(sam.clientID)]: 20_000 } });
    expect(age()).toBeGreaterThanOrEqual(20_000);
    // The next roster: the same state and clock (its renewal was held), renewed 2 s ago.
    socket.receive({ ...frame, ages: { [String(sam.clientID)]: 2_000 } });
    expect(age()).toBeGreaterThanOrEqual(2_000);
    expect(age()).toBeLessThan(2_500);
    // An older age never moves it back.
    socket.receive({ ...frame, ages: { [String(sam.clientID)]: 25_000 } });
    expect(age()).toBeLessThan(2_500);
  });
});
