/**
 * The provider from Node against the real local stack (API Gateway emulator, the Lambda
 * handlers, moto, Redis). Each test edits a Y.Text of its own in the demo scene.
 */

import { afterEach, describe, expect, inject, it } from 'vitest';
import { WebSocket } from 'ws';
import * as Y from 'yjs';

import { ApiGatewayProvider, type ConnectionStatus, type ServerError } from '../../src/index.js';
import { Clients, dropConnection, sameText, synced, textName, waitFor } from './clients.js';
import { editor, mintToken, viewer } from './tokens.js';

const stack = inject('stack');
const clients = new Clients(stack);

afterEach(() => clients.closeAll());

function statusLog(provider: ApiGatewayProvider): ConnectionStatus[] {
  const log: ConnectionStatus[] = [];
  provider.on('status', ({ status }) => log.push(status));
  return log;
}

describe('against the local stack', () => {
  it('converges three providers editing at once, and a late joiner loads the result', async () => {
    const name = textName('converge');
    const [a, b, c] = [clients.open(), clients.open(), clients.open()] as const;
    await synced(a, b, c);
    a.doc.getText(name).insert(0, 'INT. CAFE - NIGHT. ');
    b.doc.getText(name).insert(0, 'RICK pours a drink. ');
    c.doc.getText(name).insert(0, 'ILSA walks in. ');
    await waitFor('three replicas to agree', () => sameText(name, a, b, c) && a.doc.getText(name).length === 54);
    for (const line of ['INT. CAFE - NIGHT. ', 'RICK pours a drink. ', 'ILSA walks in. ']) {
      expect(a.doc.getText(name).toString()).toContain(line);
    }
    const late = clients.open();
    await synced(late);
    await waitFor('the late joiner to load the text', () => sameText(name, a, late));
  });

  it('announces participants and presence, and their departure', async () => {
    const a = clients.open();
    const b = clients.open();
    await synced(a, b);
    await waitFor('a to list b', () => a.participants.some((p) => p.connectionId === b.connectionId));
    await waitFor('b to list a', () => b.participants.some((p) => p.connectionId === a.connectionId));
    b.awareness.setLocalStateField('user', { name: 'RICK', color: '#d7263d' });
    const bClient = b.doc.clientID;
    await waitFor("b's cursor state at a", () => a.awareness.getStates().get(bClient)?.['user']?.name === 'RICK');
    const bConnection = b.connectionId;
    b.destroy();
    await waitFor('b to leave a\'s list', () => !a.participants.some((p) => p.connectionId === bConnection));
    await waitFor("b's cursor to go", () => !a.awareness.getStates().has(bClient));
  });

  it('chunks a large paste both ways: 200 KB to the server and back to a new client', async () => {
    const name = textName('large');
    const a = clients.open();
    const b = clients.open();
    await synced(a, b);
    const paste = 'EXT. AIRPORT - NIGHT. Fog. The plane waits.\n'.repeat(4_600);
    a.doc.getText(name).insert(0, paste);
    await waitFor('b to receive the paste', () => b.doc.getText(name).length === paste.length, 30_000);
    const c = clients.open();
    let chunkFrames = 0;
    c.on('status', ({ status }) => {
      if (status !== 'connected') return;
      (c.ws as unknown as WebSocket).on('message', (data) => {
        if (String(data).startsWith('{"type":"chunk"')) chunkFrames += 1;
      });
    });
    await synced(c);
    await waitFor('c to load the paste', () => c.doc.getText(name).toString() === paste, 30_000);
    expect(chunkFrames).toBeGreaterThan(1);
  });

  it('reconnects and resyncs when the emulator drops the connection', async () => {
    const name = textName('dropped');
    const a = clients.open();
    const b = clients.open();
    await synced(a, b);
    const statuses = statusLog(a);
    const first = a.connectionId ?? '';
    await dropConnection(stack, first);
    await waitFor('a to notice', () => statuses.includes('offline'));
    // While a is away, b writes; the resync on reconnect brings it over.
    b.doc.getText(name).insert(0, 'written while a was away. ');
    await waitFor('a to come back', () => a.synced && a.connectionId !== first);
    a.doc.getText(name).insert(0, 'a is back. ');
    await waitFor('both to agree', () => sameText(name, a, b) && a.doc.getText(name).length === 37);
    expect(statuses).toEqual(expect.arrayContaining(['offline', 'connecting', 'connected', 'synced']));
  });

  it('pushes edits made offline when it reconnects', async () => {
    const name = textName('offline');
    const a = clients.open();
    const b = clients.open();
    await synced(a, b);
    a.disconnect();
    expect(a.status).toBe('offline');
    a.doc.getText(name).insert(0, 'typed on a train. ');
    b.doc.getText(name).insert(0, 'typed at the office. ');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(b.doc.getText(name).toString()).not.toContain('train');
    a.connect();
    await waitFor('both to hold both edits', () => sameText(name, a, b) && b.doc.getText(name).length === 39);
  });

  it('asks for a fresh token on every connect, and recovers from an expired one', async () => {
    const user = editor(stack);
    const issued: string[] = [];
    const a = clients.open({
      // The first token expired an hour ago: the upgrade is refused, the provider retries.
      getToken: () => {
        const token = mintToken(stack, user, { expiresIn: issued.length === 0 ? -3_600 : 3_600 });
        issued.push(token);
        return token;
      },
      maxBackoffTime: 1_000,
    });
    await synced(a);
    expect(issued.length).toBeGreaterThanOrEqual(2);
    const before = issued.length;
    await dropConnection(stack, a.connectionId ?? '');
    await waitFor('a to reconnect', () => issued.length > before && a.synced);
  });

  it('reconnects with a fresh token when the server says token_expired', async () => {
    const name = textName('expiry');
    const user = editor(stack);
    let calls = 0;
    // Valid for 2 s: accepted at connect, expired for the messages after that.
    const a = clients.open({ getToken: () => mintToken(stack, user, { expiresIn: ++calls === 1 ? 2 : 3_600 }) });
    const b = clients.open();
    const errors: ServerError[] = [];
    a.on('server-error', (error) => errors.push(error));
    await synced(a, b);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    a.doc.getText(name).insert(0, 'after expiry');
    await waitFor('token_expired', () => errors.some((e) => e.code === 'token_expired'));
    await waitFor('the edit to arrive after the refresh', () => b.doc.getText(name).toString() === 'after expiry');
    expect(calls).toBeGreaterThanOrEqual(2);
  });

  it('stops with a forbidden error on a scene the user has no access to', async () => {
    const user = editor(stack);
    // Not tied to the demo scene, so the upgrade succeeds and the first message is refused.
    const token = mintToken(stack, user, { without: ['sceneId'] });
    const provider = new ApiGatewayProvider(stack.wsUrl, `no-access-${textName('scene')}`, new Y.Doc(), {
      token,
      WebSocketPolyfill: WebSocket,
    });
    const errors: string[] = [];
    provider.on('connection-error', (error) => errors.push(error.code));
    try {
      await waitFor('the refusal', () => provider.status === 'error');
      expect(errors).toContain('forbidden');
      expect(provider.shouldConnect).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(provider.status).toBe('error');
    } finally {
      provider.destroy();
    }
  });

  it.skipIf(viewer(stack) === undefined)("keeps a viewer's edits to itself and shows it the others'", async () => {
    const name = textName('viewer');
    const watcher = clients.open({ token: mintToken(stack, viewer(stack) ?? editor(stack)) });
    const writer = clients.open();
    const refusals: ServerError[] = [];
    watcher.on('server-error', (error) => refusals.push(error));
    await synced(watcher, writer);
    expect(watcher.role).toBe('viewer');
    writer.doc.getText(name).insert(0, 'FADE OUT.');
    await waitFor('the viewer to see the edit', () => watcher.doc.getText(name).toString() === 'FADE OUT.');
    watcher.doc.getText(name).insert(0, 'a critic scribbles ');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(writer.doc.getText(name).toString()).toBe('FADE OUT.');
    expect(refusals).toEqual([]);
  });

  it('connects with the token as a subprotocol', async () => {
    const a = clients.open({ tokenTransport: 'subprotocol' });
    await synced(a);
    expect(a.role).not.toBeNull();
  });
});
