import { Buffer } from 'node:buffer';

import * as encoding from 'lib0/encoding';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';

import { splitIntoChunks, utf8Length } from '../../src/chunking.js';
import { ApiGatewayProvider, type ApiGatewayProviderOptions, type ConnectionStatus } from '../../src/provider.js';
import { scriptedSockets, type ScriptedSocket } from './scriptedSocket.js';

const URL = 'wss://example.execute-api.eu-west-1.amazonaws.com/prod';
const me = { connectionId: 'conn-me', userId: 'u-me', userName: 'ILSA' };
const rick = { connectionId: 'conn-rick', userId: 'u-rick', userName: 'RICK' };

function connected(role = 'editor', participants = [me]) {
  return { type: 'connected', sceneId: 'scene-1', connectionId: me.connectionId, user: me, role, participants };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/** A server `sync` message written by one of y-protocols' writers from `doc`. */
function serverSync(write: (encoder: encoding.Encoder, doc: Y.Doc) => void, doc: Y.Doc) {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  write(encoder, doc);
  return { type: 'sync', data: b64(encoding.toUint8Array(encoder)) };
}

/** The server's SyncStep2 carrying `doc`'s whole state. */
const serverStep2 = (doc: Y.Doc) => serverSync((encoder, d) => syncProtocol.writeSyncStep2(encoder, d), doc);
/** The server's SyncStep1 (its state vector). */
const serverStep1 = (doc: Y.Doc) => serverSync(syncProtocol.writeSyncStep1, doc);

function dataBytes(frame: Record<string, unknown>): number[] {
  return [...Buffer.from(String(frame['data']), 'base64')];
}

let setup: ReturnType<typeof scriptedSockets>;
let providers: ApiGatewayProvider[];

function start(options: ApiGatewayProviderOptions = {}, doc = new Y.Doc()) {
  const provider = new ApiGatewayProvider(URL, 'scene-1', doc, {
    token: 'jwt-1',
    WebSocketPolyfill: setup.WebSocketPolyfill,
    ...options,
  });
  providers.push(provider);
  const statuses: ConnectionStatus[] = [];
  provider.on('status', ({ status }) => statuses.push(status));
  return { provider, doc, statuses };
}

/** Let the token promise settle and the socket get created. */
async function settle(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

/** Open the socket and answer the first sync like the server does. */
async function admit(role = 'editor', participants = [me]): Promise<ScriptedSocket> {
  await settle();
  const socket = setup.last();
  socket.open();
  socket.receive(connected(role, participants));
  socket.receive(serverStep2(new Y.Doc()));
  return socket;
}

beforeEach(() => {
  vi.useFakeTimers();
  setup = scriptedSockets();
  providers = [];
});

afterEach(() => {
  for (const provider of providers) provider.destroy();
  vi.useRealTimers();
});

describe('ApiGatewayProvider: connecting', () => {
  it('connects with sceneId and token in the query and sends SyncStep1 on open', async () => {
    const { provider, doc, statuses } = start();
    doc.getText('t').insert(0, 'local');
    await settle();
    const socket = setup.last();
    expect(socket.url).toBe(`${URL}?sceneId=scene-1&token=jwt-1`);
    expect(statuses).toEqual([]); // 'connecting' came from the constructor, before any listener
    expect(provider.status).toBe('connecting');
    socket.open();
    const [sync] = socket.frames();
    expect(sync?.['action']).toBe('sync');
    const sv = Y.encodeStateVector(doc);
    expect(dataBytes(sync ?? {})).toEqual([0, 0, sv.length, ...sv]);
    expect(statuses).toEqual(['connected']);
  });

  it('offers the token as a subprotocol when asked to', async () => {
    start({ tokenTransport: 'subprotocol' });
    await settle();
    expect(setup.last().url).toBe(`${URL}?sceneId=scene-1`);
    expect(setup.last().protocols).toEqual(['collab.v1', 'jwt-1']);
  });

  it('is synced once the server SyncStep2 is applied, and answers its SyncStep1 with what it lacks', async () => {
    const { provider, doc, statuses } = start();
    const syncEvents: boolean[] = [];
    provider.on('sync', (synced) => syncEvents.push(synced));
    doc.getText('t').insert(0, 'written offline');
    await settle();
    const socket = setup.last();
    socket.open();
    const server = new Y.Doc();
    server.getText('t').insert(0, 'on the server ');
    socket.receive(connected());
    socket.receive(serverStep2(server));
    socket.receive(serverStep1(server));
    expect(provider.synced).toBe(true);
    expect(syncEvents).toEqual([true]);
    expect(statuses).toEqual(['connected', 'synced']);
    expect(doc.getText('t').toString()).toContain('on the server');
    const reply = socket.frames().find((f) => f['action'] === 'update');
    expect(dataBytes(reply ?? {}).slice(0, 2)).toEqual([0, 1]);
    Y.applyUpdate(server, new Uint8Array(dataBytes(reply ?? {}).slice(3)));
    expect(server.getText('t').toString()).toContain('written offline');
  });

  it('keeps the participants the server announces', async () => {
    const { provider } = start();
    const seen: number[] = [];
    provider.on('participants', (list) => seen.push(list.length));
    const socket = await admit('editor', [me]);
    expect(provider.role).toBe('editor');
    expect(provider.connectionId).toBe(me.connectionId);
    socket.receive({ type: 'participant-joined', participant: rick });
    socket.receive({ type: 'participant-joined', participant: rick });
    expect(provider.participants.map((p) => p.userName)).toEqual(['ILSA', 'RICK']);
    socket.receive({ type: 'participant-left', participant: rick });
    expect(provider.participants).toEqual([me]);
    expect(seen).toEqual([1, 2, 2, 1]);
    // An eviction's one message names every participant that left.
    const sam = { connectionId: 'c-sam', userId: 'u-sam', userName: 'SAM' };
    socket.receive({ type: 'participant-joined', participant: rick });
    socket.receive({ type: 'participant-joined', participant: sam });
    socket.receive({ type: 'participant-left', participant: rick, participants: [rick, sam] });
    expect(provider.participants).toEqual([me]);
  });
});

describe('ApiGatewayProvider: sending', () => {
  it('sends local edits as [0, 2, update] once admitted, and not the ones it received', async () => {
    const { doc } = start();
    const socket = await admit();
    doc.getText('t').insert(0, 'hello');
    const remote = new Y.Doc();
    remote.getText('t').insert(0, 'remote ');
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(remote));
    socket.receive({ type: 'update', data: b64(encoding.toUint8Array(encoder)) });
    await settle(); // edits leave at the end of the task (client/src/outgoing.ts)
    const updates = socket.frames().filter((f) => f['action'] === 'update');
    expect(updates).toHaveLength(1);
    expect(dataBytes(updates[0] ?? {}).slice(0, 2)).toEqual([0, 2]);
  });

  it('sends no edits before the server has said who we are', async () => {
    const { doc } = start();
    await settle();
    setup.last().open();
    doc.getText('t').insert(0, 'early');
    await settle(100);
    expect(setup.last().actions()).toEqual(['sync', 'awareness']);
  });

  it("does not send a viewer's edits", async () => {
    const { doc } = start();
    const socket = await admit('viewer');
    doc.getText('t').insert(0, 'a viewer types');
    expect(socket.actions()).not.toContain('update');
  });

  it('chunks a large edit into frames of at most 30,000 bytes', async () => {
    const { doc } = start();
    const socket = await admit();
    doc.getText('t').insert(0, 'INT. CASABLANCA - NIGHT\n'.repeat(6_000));
    await settle();
    const chunks = socket.frames().filter((f) => f['action'] === 'chunk');
    expect(chunks.length).toBeGreaterThan(4);
    for (const text of socket.sent) expect(utf8Length(text)).toBeLessThanOrEqual(30_000);
    const whole = JSON.parse(chunks.map((c) => String(c['data'])).join('')) as Record<string, unknown>;
    expect(whole['action']).toBe('update');
  });

  it("sends its own awareness state, and y-protocols' 15 s renewal of it", async () => {
    const { provider } = start();
    const socket = await admit();
    await settle(100);
    provider.awareness.setLocalStateField('user', { name: 'ILSA', color: '#f00' });
    await settle(100); // at most one awareness frame per 80 ms (awarenessThrottle)
    const count = () => socket.actions().filter((a) => a === 'awareness').length;
    expect(count()).toBe(2); // the initial empty state on open, then the user
    // What Awareness does every 15 s (on real time: lib0 captured Date.now before the fake
    // timers): the same state with a new clock, an 'update' without a 'change'.
    provider.awareness.setLocalState(provider.awareness.getLocalState());
    await settle(100);
    expect(count()).toBe(3);
  });

  it('resyncs periodically, and pings only when no resync went out for a ping interval', async () => {
    start({ resyncInterval: 30_000, pingInterval: 60_000 });
    const socket = await admit();
    socket.sent.length = 0;
    await settle(60_000);
    expect(socket.actions().sort()).toEqual(['sync', 'sync']); // each answered: no ping needed
    start({ resyncInterval: 0, pingInterval: 60_000 });
    const quiet = await admit();
    quiet.sent.length = 0;
    await settle(120_000);
    expect(quiet.actions()).toEqual(['ping', 'ping']);
  });
});

describe('ApiGatewayProvider: reconnecting', () => {
  it('fetches a fresh token and retries with backoff after a refused upgrade', async () => {
    let calls = 0;
    const getToken = vi.fn(async () => `jwt-${++calls}`);
    // maxRefusedUpgrades 0: retry for ever, so only the backoff is at work here.
    const { statuses } = start({ getToken, maxBackoffTime: 1_000, maxRefusedUpgrades: 0 });
    await settle();
    setup.last().refuseUpgrade();
    expect(statuses.at(-1)).toBe('offline');
    await settle(200);
    setup.last().refuseUpgrade();
    await settle(400);
    expect(getToken).toHaveBeenCalledTimes(3);
    expect(setup.last().url).toContain('token=jwt-3');
    // The ceiling: never more than maxBackoffTime between attempts.
    for (let i = 0; i < 5; i++) {
      setup.last().refuseUpgrade();
      await settle(1_000);
    }
    expect(setup.sockets).toHaveLength(8);
  });

  it('reconnects at once when the server ends a healthy connection, and syncs again', async () => {
    const { provider, statuses } = start();
    const first = await admit();
    first.serverClose(1001);
    expect(provider.synced).toBe(false);
    expect(provider.participants).toEqual([]);
    await settle(200);
    expect(setup.sockets).toHaveLength(2);
    setup.last().open();
    await settle(100);
    expect(setup.last().actions()).toEqual(['sync', 'awareness']);
    expect(statuses).toEqual(['connected', 'synced', 'offline', 'connecting', 'connected']);
  });

  it('steps its awareness clock past the removal the server made when it reconnects', async () => {
    const { provider } = start();
    const first = await admit();
    const clockBefore = provider.awareness.meta.get(provider.doc.clientID)!.clock;
    first.serverClose(1001); // the server then removes our state with clockBefore + 1
    await settle(200);
    setup.last().open();
    // Peers keep clockBefore + 1 as a tombstone and accept only a higher clock.
    expect(provider.awareness.meta.get(provider.doc.clientID)!.clock).toBe(clockBefore + 2);
    await settle(100);
    expect(setup.last().actions()).toEqual(['sync', 'awareness']);
  });

  it('reconnects with a fresh token after token_expired', async () => {
    let calls = 0;
    const { provider } = start({ getToken: async () => `jwt-${++calls}` });
    const errors: string[] = [];
    provider.on('server-error', (error) => errors.push(error.code));
    const socket = await admit();
    socket.receive({ type: 'error', code: 'token_expired', message: 'token expired', action: 'update' });
    expect(socket.closedWith).toBe(1000);
    await settle(200);
    expect(errors).toEqual(['token_expired']);
    expect(setup.last().url).toContain('token=jwt-2');
  });

  it('stops and reports when the first message is refused as forbidden', async () => {
    const { provider, statuses } = start();
    const errors: string[] = [];
    provider.on('connection-error', (error) => errors.push(`${error.code}: ${error.message}`));
    await settle();
    const socket = setup.last();
    socket.open();
    socket.receive({ type: 'error', code: 'forbidden', message: 'no access to scene-1', action: 'sync' });
    expect(socket.closedWith).toBe(1000);
    expect(statuses.at(-1)).toBe('error');
    expect(errors).toEqual(['forbidden: no access to scene-1']);
    await settle(60_000);
    expect(setup.sockets).toHaveLength(1);
    provider.connect();
    await settle();
    expect(setup.sockets).toHaveLength(2);
  });

  it("keeps going when an admitted viewer's edit is refused", async () => {
    const { provider } = start();
    const socket = await admit('viewer');
    socket.receive({ type: 'error', code: 'forbidden', message: 'viewers cannot edit', action: 'update' });
    expect(provider.status).toBe('synced');
    expect(provider.shouldConnect).toBe(true);
  });

  it('gives up on a silent socket and reconnects', async () => {
    start({ resyncInterval: 10_000, pingInterval: 0 });
    await admit();
    await settle(40_000);
    expect(setup.sockets.length).toBeGreaterThan(1);
  });
});

describe('ApiGatewayProvider: receiving', () => {
  it('reassembles a chunked server message and applies it', async () => {
    const { provider, doc } = start();
    await settle();
    const socket = setup.last();
    socket.open();
    socket.receive(connected());
    const server = new Y.Doc();
    server.getText('t').insert(0, 'FADE IN:\n'.repeat(20_000));
    const json = JSON.stringify(serverStep2(server));
    const frames = splitIntoChunks(json, 's1', 120_000).map((frame) =>
      frame.replace('"action":"chunk"', '"type":"chunk"'),
    );
    expect(frames.length).toBeGreaterThan(1);
    for (const frame of frames.reverse()) socket.receive(frame);
    expect(provider.synced).toBe(true);
    expect(doc.getText('t').length).toBe(server.getText('t').length);
  });

  it('shows remote cursors while connected and drops them on close', async () => {
    const { provider } = start();
    const socket = await admit();
    const peer = new Y.Doc();
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 1);
    const { Awareness, encodeAwarenessUpdate } = await import('y-protocols/awareness');
    const peerAwareness = new Awareness(peer);
    peerAwareness.setLocalStateField('user', { name: 'RICK' });
    encoding.writeVarUint8Array(encoder, encodeAwarenessUpdate(peerAwareness, [peer.clientID]));
    const sentBefore = socket.sent.length;
    socket.receive({ type: 'awareness', data: b64(encoding.toUint8Array(encoder)) });
    expect(provider.awareness.getStates().get(peer.clientID)).toEqual({ user: { name: 'RICK' } });
    expect(socket.sent.length).toBe(sentBefore); // a remote state is never echoed back
    socket.serverClose();
    expect(provider.awareness.getStates().has(peer.clientID)).toBe(false);
    peerAwareness.destroy();
  });

  it('reports a frame it cannot read and keeps the connection', async () => {
    const { provider } = start();
    const problems: string[] = [];
    provider.on('protocol-error', (error) => problems.push(error.name));
    const socket = await admit();
    socket.receive('not json');
    socket.receive({ type: 'sync', data: 'AQA=' });
    expect(problems).toEqual(['FrameError', 'PayloadError']);
    expect(provider.status).toBe('synced');
  });
});

describe('ApiGatewayProvider: leaving', () => {
  it('removes its awareness state for the others on destroy, then closes', async () => {
    const { provider } = start();
    provider.awareness.setLocalStateField('user', { name: 'ILSA' });
    const socket = await admit();
    socket.sent.length = 0;
    provider.destroy();
    const [removal] = socket.frames();
    expect(removal?.['action']).toBe('awareness');
    // [1, len, count=1, clientID..., clock, "null"]: the state is JSON null.
    expect(Buffer.from(dataBytes(removal ?? {})).toString('latin1').endsWith('null')).toBe(true);
    expect(socket.closedWith).toBe(1000);
    expect(provider.status).toBe('offline');
  });

  it('tells the others it left on disconnect but keeps its state for the next connect', async () => {
    const { provider } = start();
    provider.awareness.setLocalStateField('user', { name: 'ILSA' });
    const socket = await admit();
    provider.disconnect();
    expect(socket.actions().at(-1)).toBe('awareness');
    expect(provider.awareness.getLocalState()).toEqual({ user: { name: 'ILSA' } });
    await settle(60_000);
    expect(setup.sockets).toHaveLength(1);
  });

  it('drops a token that arrives after disconnect', async () => {
    let release: (token: string) => void = () => {};
    const { provider } = start({ getToken: () => new Promise<string>((resolve) => (release = resolve)) });
    await settle();
    provider.disconnect();
    release('late');
    await settle();
    expect(setup.sockets).toHaveLength(0);
    expect(provider.status).toBe('offline');
  });
});
