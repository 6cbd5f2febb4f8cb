/**
 * Attacks on the provider's side of issue 11 (docs/presence.md): `ages` in server frames,
 * combined `synced` answers, an edit and its cursor in one frame, the 80 ms awareness
 * throttle, destroy() while something is pending, and edits made from awareness handlers.
 * The server is played frame by frame on a scripted socket (scriptedSocket.ts).
 *
 * `it.fails` marks a bug found here: the test states what should happen, and fails today.
 */

import { Buffer } from 'node:buffer';

import * as decoding from 'lib0/decoding';
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

/** A peer's edit, as the server relays it: `[0, 2, update]`. */
function peerEdit(text: string): string {
  const other = new Y.Doc();
  other.getText('t').insert(0, text);
  return serverSync((e) => syncProtocol.writeUpdate(e, Y.encodeStateAsUpdate(other)));
}

function peer(state: Record<string, unknown>) {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc());
  awareness.setLocalState(state);
  return awareness;
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
  const problems: string[] = [];
  started.provider.on('protocol-error', (error) => problems.push(error.message));
  return { ...started, socket, problems };
}

/** The awareness states a server would read from the frames the provider sent. */
function statesSent(frames: Record<string, unknown>[]): Map<number, unknown> {
  const there = new awarenessProtocol.Awareness(new Y.Doc());
  for (const frame of frames) {
    const field = frame['action'] === 'awareness' ? frame['data'] : frame['awareness'];
    if (typeof field !== 'string') continue;
    awarenessProtocol.applyAwarenessUpdate(there, Buffer.from(field, 'base64').subarray(2), 'server');
  }
  there.destroy();
  return new Map(there.getStates());
}

/** The text a server would store from the provider's `update` frames. */
function textSent(frames: Record<string, unknown>[], name = 't'): string {
  const server = new Y.Doc();
  for (const frame of frames) {
    if (frame['action'] !== 'update') continue;
    const decoder = decoding.createDecoder(new Uint8Array(Buffer.from(String(frame['data']), 'base64')));
    decoding.readVarUint(decoder); // MESSAGE_SYNC
    decoding.readVarUint(decoder); // SyncStep2 or Update
    Y.applyUpdate(server, decoding.readVarUint8Array(decoder));
  }
  return server.getText(name).toString();
}

describe('ages in server frames', () => {
  // Two invocations read the clock, and the later one's write runs first: the server
  // computes now - seen < 0 (tests/core/test_attack_presence.py,
  // test_ages_are_never_negative_when_invocations_run_out_of_order). framing.ts `ages`
  // rejects the frame whole, so the edit riding with the cursor is dropped too.
  it('applies a peer edit whose frame carries a slightly negative age', async () => {
    const { doc, socket, problems } = await admitted();
    const louis = peer({ cursor: { anchor: 5 } });
    socket.receive({
      type: 'update',
      data: peerEdit('LOUIS'),
      awareness: awarenessData(louis, [louis.clientID]),
      ages: { [String(louis.clientID)]: -40 },
    });
    expect(problems).toEqual([]);
    expect(doc.getText('t').toString()).toBe('LOUIS');
  });

  it('is synced by a combined answer that carries a slightly negative age', async () => {
    const { provider, doc, socket } = await admitted();
    await settle(60_000); // the periodic resync asks for a combined answer
    provider.synced = false; // as after a reconnect: this answer is what syncs it
    const server = new Y.Doc();
    server.getText('t').insert(0, 'FADE IN:');
    const rick = peer({ user: { name: 'RICK' } });
    socket.receive({
      ...connected(),
      type: 'synced',
      data: serverSync((e) => syncProtocol.writeSyncStep2(e, server, Y.encodeStateVector(doc))),
      awareness: awarenessData(rick, [rick.clientID]),
      ages: { [String(rick.clientID)]: -3 },
    });
    expect(doc.getText('t').toString()).toBe('FADE IN:');
    expect(provider.synced).toBe(true);
  });

  it('drops a state whose age says it was last written long ago at the next check', async () => {
    const { provider, socket } = await admitted();
    const ghost = peer({ user: { name: 'GHOST' } });
    socket.receive({
      type: 'awareness',
      data: awarenessData(ghost, [ghost.clientID]),
      ages: { [String(ghost.clientID)]: Number.MAX_SAFE_INTEGER },
    });
    await settle(3_100); // y-protocols' check, every 3 s
    expect(provider.awareness.getStates().has(ghost.clientID)).toBe(false);
  });

  it('keeps a live state whose age is just under 30 s until its 30 s are up, then drops it', async () => {
    const { provider, socket } = await admitted();
    const sam = peer({ user: { name: 'SAM' } });
    socket.receive({ type: 'awareness', data: awarenessData(sam, [sam.clientID]), ages: { [String(sam.clientID)]: 29_500 } });
    await settle(3_100); // y-protocols' 3 s check
    expect(provider.awareness.getStates().has(sam.clientID)).toBe(true);
    // y-protocols reads lib0's clock, which is Date.now as it was before the fake timers:
    // the 30 s are real time. 600 ms of it pass here.
    const until = time.getUnixTime() + 600;
    while (time.getUnixTime() < until) {
      // wait
    }
    await settle(3_100);
    expect(provider.awareness.getStates().has(sam.clientID)).toBe(false);
  });

  it('never lets ages touch our own state, whatever they say', async () => {
    const { provider, socket } = await admitted();
    provider.awareness.setLocalStateField('cursor', { anchor: 1 });
    const own = provider.doc.clientID;
    const before = provider.awareness.meta.get(own)?.lastUpdated;
    socket.receive({
      type: 'awareness',
      data: awarenessData(provider.awareness, [own]),
      ages: { [String(own)]: Number.MAX_SAFE_INTEGER },
    });
    expect(provider.awareness.meta.get(own)?.lastUpdated).toBe(before);
    await settle(40_000);
    expect(provider.awareness.getLocalState()).toEqual({ cursor: { anchor: 1 } });
  });
});

describe('combined sync answers from a broken or hostile server', () => {
  it('drops a synced frame with missing fields, says so, and handles the next one', async () => {
    const { provider, doc, socket, problems } = await admitted();
    const server = new Y.Doc();
    server.getText('t').insert(0, 'INT.');
    const step2 = serverSync((e) => syncProtocol.writeSyncStep2(e, server, Y.encodeStateVector(doc)));
    const { participants: _p, ...noParticipants } = connected();
    socket.receive({ ...noParticipants, type: 'synced', data: step2 });
    socket.receive({ ...connected(), type: 'synced' }); // no SyncStep2
    socket.receive({ ...connected(), type: 'synced', data: step2, awareness: 42 });
    expect(problems).toHaveLength(3);
    expect(doc.getText('t').toString()).toBe(''); // nothing half-applied
    // Garbage ages only tune timeouts: left out, and the answer is handled.
    socket.receive({ ...connected(), type: 'synced', data: step2, participants: [me], ages: [1, 2] });
    expect(problems).toHaveLength(3);
    expect(doc.getText('t').toString()).toBe('INT.');
    expect(provider.participants).toEqual([me]);
  });

  it('applies the edit of a combined frame whose awareness part is garbage, and reports it', async () => {
    const { doc, socket, problems } = await admitted();
    socket.receive({ type: 'update', data: peerEdit('KEPT'), awareness: b64(new Uint8Array([0, 0, 1])) });
    expect(doc.getText('t').toString()).toBe('KEPT');
    expect(problems).toHaveLength(1);
  });
});

describe('the outgoing batch', () => {
  it('destroy() sends an edit of the same task with the removal of its cursor', async () => {
    const { provider, doc, socket } = await admitted();
    provider.awareness.setLocalStateField('cursor', { anchor: 1 });
    await settle(200);
    socket.sent.length = 0;
    doc.getText('t').insert(0, 'LAST WORDS');
    provider.destroy(); // before the microtask that would have sent the edit
    const frames = socket.frames();
    expect(textSent(frames)).toBe('LAST WORDS');
    expect(statesSent(frames).has(doc.clientID)).toBe(false);
  });

  it('disconnect() with a throttled cursor move pending loses no edit', async () => {
    const { provider, doc, socket } = await admitted({ awarenessThrottle: 80 });
    provider.awareness.setLocalStateField('cursor', { anchor: 1 });
    await settle(10);
    provider.awareness.setLocalStateField('cursor', { anchor: 2 }); // waits for the throttle
    doc.getText('t').insert(0, 'TYPED');
    provider.disconnect();
    expect(textSent(socket.frames())).toBe('TYPED');
  });

  it('the last cursor position held by the throttle is sent again after a reconnect', async () => {
    const { provider, socket } = await admitted({ awarenessThrottle: 80 });
    provider.awareness.setLocalStateField('cursor', { anchor: 1 });
    await settle(10);
    provider.awareness.setLocalStateField('cursor', { anchor: 2 }); // held by the throttle...
    socket.serverClose(); // ...when the connection ends
    await settle(1_000);
    const next = harness.last();
    expect(next).not.toBe(socket);
    next.open();
    await settle(200);
    expect(statesSent(next.frames()).get(provider.doc.clientID)).toEqual({ cursor: { anchor: 2 } });
  });

  it('an edit made by an awareness change handler goes out with the cursor, in one frame', async () => {
    const { provider, doc, socket } = await admitted();
    // An app that writes "last active" into the doc whenever its own cursor moves.
    provider.awareness.on('change', (_: unknown, origin: unknown) => {
      if (origin === 'local') doc.getMap('meta').set('active', 'ILSA');
    });
    provider.awareness.setLocalStateField('cursor', { anchor: 3 });
    await settle(200);
    const frames = socket.frames();
    expect(frames.map((f) => f['action'])).toEqual(['update']);
    expect(statesSent(frames).get(doc.clientID)).toEqual({ cursor: { anchor: 3 } });
  });

  it('an edit made while applying a peer cursor is sent, not taken for the peer\'s', async () => {
    const { provider, doc, socket } = await admitted();
    provider.awareness.on('change', ({ added }: { added: number[] }) => {
      // (Its own Y.Text, so that the edit does not depend on the peer's, which the
      // server already has.)
      if (added.some((client) => client !== doc.clientID)) doc.getText('log').insert(0, 'WELCOME ');
    });
    const louis = peer({ cursor: { anchor: 0 } });
    socket.receive({ type: 'update', data: peerEdit('LOUIS'), awareness: awarenessData(louis, [louis.clientID]) });
    await settle(200);
    expect(textSent(socket.frames(), 'log')).toBe('WELCOME ');
    expect(doc.getText('t').toString()).toBe('LOUIS');
  });

  it('a cursor moved by a doc update handler rides with that edit', async () => {
    const { provider, doc, socket } = await admitted();
    doc.on('update', (_u: Uint8Array, origin: unknown) => {
      if (origin !== provider) provider.awareness.setLocalStateField('cursor', { anchor: doc.getText('t').length });
    });
    doc.getText('t').insert(0, 'RICK: ');
    await settle(200);
    const frames = socket.frames();
    expect(frames.map((f) => f['action'])).toEqual(['update']);
    expect(statesSent(frames).get(doc.clientID)).toEqual({ cursor: { anchor: 6 } });
  });
});
