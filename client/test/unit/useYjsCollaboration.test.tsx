// @vitest-environment happy-dom
import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  useYjsCollaboration,
  type UseYjsCollaborationOptions,
  type UseYjsCollaborationResult,
} from '../../src/react/index.js';
import { StoredScene } from './providerHarness.js';
import { scriptedSockets, type ScriptedSocket } from './scriptedSocket.js';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const URL = 'wss://example.execute-api.eu-west-1.amazonaws.com/prod';
const me = { connectionId: 'conn-me', userId: 'u-me', userName: 'ILSA' };
// An empty SyncStep2: [0, 1, length 2, no structs, no deletions].
const emptyStep2 = { type: 'sync', data: Buffer.from([0, 1, 2, 0, 0]).toString('base64') };

let setup: ReturnType<typeof scriptedSockets>;
let root: Root;
let result: UseYjsCollaborationResult;

function Probe(props: UseYjsCollaborationOptions) {
  result = useYjsCollaboration(props);
  return null;
}

async function render(props: Partial<UseYjsCollaborationOptions>): Promise<void> {
  await act(async () => {
    root.render(
      <Probe
        sceneId="scene-1"
        url={URL}
        providerOptions={{ WebSocketPolyfill: setup.WebSocketPolyfill }}
        {...props}
      />,
    );
    await new Promise((resolve) => setTimeout(resolve, 0)); // the token promise
  });
}

async function server(step: (socket: ScriptedSocket) => void): Promise<void> {
  await act(async () => {
    step(setup.last());
    await new Promise((resolve) => setTimeout(resolve, 0));
  });
}

function admit(socket: ScriptedSocket): void {
  socket.open();
  socket.receive({ type: 'connected', sceneId: 'scene-1', connectionId: me.connectionId, user: me, role: 'editor', participants: [me] });
  socket.receive(emptyStep2);
}

beforeEach(() => {
  setup = scriptedSockets();
  root = createRoot(document.createElement('div'));
});

afterEach(async () => {
  await act(async () => root.unmount());
});

describe('useYjsCollaboration', () => {
  it('connects, and reports status, participants and sync', async () => {
    const onSyncStatusChange = vi.fn();
    await render({ authToken: 'jwt-1', onSyncStatusChange });
    expect(setup.last().url).toBe(`${URL}?sceneId=scene-1&token=jwt-1`);
    expect(result.syncStatus).toBe('connecting');
    await server(admit);
    expect(result.syncStatus).toBe('synced');
    expect(result.isConnected).toBe(true);
    expect(result.participants).toEqual([me]);
    expect(result.awareness).toBe(result.provider?.awareness);
    expect(onSyncStatusChange.mock.calls.map(([status]) => status)).toEqual(['connecting', 'connected', 'synced']);
  });

  it('uses the latest getToken on a reconnect without reconnecting when it changes', async () => {
    await render({ getToken: async () => 'jwt-1' });
    await server(admit);
    await render({ getToken: async () => 'jwt-2' });
    expect(setup.sockets).toHaveLength(1);
    await server((socket) => socket.serverClose());
    await act(async () => new Promise((resolve) => setTimeout(resolve, 300)));
    expect(setup.sockets).toHaveLength(2);
    expect(setup.last().url).toContain('token=jwt-2');
  });

  it('keeps the doc and its edits while disabled', async () => {
    await render({ authToken: 'jwt-1', enabled: false });
    expect(setup.sockets).toHaveLength(0);
    expect(result.provider).toBeNull();
    const doc = result.doc;
    doc?.getText('scene').insert(0, 'offline draft');
    await render({ authToken: 'jwt-1', enabled: true });
    expect(setup.sockets).toHaveLength(1);
    await render({ authToken: 'jwt-1', enabled: false });
    expect(setup.last().readyState).toBe(3);
    expect(result.syncStatus).toBe('offline');
    expect(result.doc).toBe(doc);
    expect(result.doc?.getText('scene').toString()).toBe('offline draft');
  });

  it('does not connect without a token', async () => {
    await render({});
    expect(setup.sockets).toHaveLength(0);
    expect(result.doc).not.toBeNull();
  });

  it('reports a refusal, and reconnect() tries again', async () => {
    const onError = vi.fn();
    await render({ authToken: 'jwt-1', onError });
    await server((socket) => {
      socket.open();
      socket.receive({ type: 'error', code: 'forbidden', message: 'no access', action: 'sync' });
    });
    expect(result.syncStatus).toBe('error');
    expect(result.connectionError).toEqual({ code: 'forbidden', message: 'no access' });
    expect(onError).toHaveBeenCalledWith({ code: 'forbidden', message: 'no access' });
    await act(async () => {
      result.reconnect();
      await new Promise((resolve) => setTimeout(resolve, 0));
    });
    expect(setup.sockets).toHaveLength(2);
    expect(result.connectionError).toBeNull();
    expect(result.syncStatus).toBe('connecting');
  });

  it('gives a new scene a new doc, closing the old connection first', async () => {
    await render({ authToken: 'jwt-1' });
    await server(admit);
    const first = { doc: result.doc, socket: setup.last() };
    let docAliveAtClose = false;
    first.socket.onclose = null; // the provider detaches before closing; watch the close itself
    const close = first.socket.close.bind(first.socket);
    first.socket.close = (code?: number) => {
      docAliveAtClose = !first.doc?.isDestroyed;
      close(code);
    };
    await render({ authToken: 'jwt-1', sceneId: 'scene-2' });
    expect(docAliveAtClose).toBe(true);
    expect(first.doc?.isDestroyed).toBe(true);
    expect(result.doc).not.toBe(first.doc);
    expect(setup.last().url).toContain('sceneId=scene-2');
  });

  it('returns the role and whether every local edit is saved', async () => {
    await render({ authToken: 'jwt-1', providerOptions: { WebSocketPolyfill: setup.WebSocketPolyfill, savedCheckDelay: 5 } });
    expect(result.role).toBeNull();
    expect(result.saved).toBe(true);
    let scene: StoredScene | undefined;
    await server((socket) => {
      socket.open();
      scene = new StoredScene(socket, 'owner');
      scene.answerSyncs();
    });
    expect(result.role).toBe('owner');
    await act(async () => {
      result.doc?.getText('scene').insert(0, 'FADE IN:');
    });
    expect(result.saved).toBe(false);
    await act(async () => {
      // The provider asks (a `sync`) savedCheckDelay after the edit.
      while (scene?.syncs() !== 2) await new Promise((resolve) => setTimeout(resolve, 1));
    });
    await server(() => {
      scene?.store();
      scene?.answerSyncs();
    });
    expect(result.saved).toBe(true);
    expect(scene?.doc.getText('scene').toString()).toBe('FADE IN:');
  });

  it('says it is a viewer, saved until it types (a viewer\'s edits are never stored)', async () => {
    await render({ authToken: 'jwt-1' });
    await server((socket) => {
      socket.open();
      new StoredScene(socket, 'viewer').answerSyncs();
    });
    expect(result.role).toBe('viewer');
    expect(result.saved).toBe(true);
    await act(async () => {
      result.doc?.getText('scene').insert(0, 'a viewer types');
    });
    expect(result.saved).toBe(false);
  });

  it('counts edits made while disabled as unsaved once enabled', async () => {
    await render({ authToken: 'jwt-1', enabled: false });
    result.doc?.getText('scene').insert(0, 'offline draft');
    await render({ authToken: 'jwt-1', enabled: true });
    expect(result.saved).toBe(false);
  });

  it('takes the cursor away when the page is hidden for good', async () => {
    await render({ authToken: 'jwt-1' });
    await server(admit);
    result.awareness?.setLocalStateField('user', { name: 'ILSA' });
    await act(async () => {
      window.dispatchEvent(new Event('pagehide'));
    });
    expect(result.awareness?.getLocalState()).toBeNull();
    expect(setup.last().actions().at(-1)).toBe('awareness');
  });
});
