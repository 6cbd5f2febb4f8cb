import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as Y from 'yjs';

import { Harness, settle, StoredScene } from './providerHarness.js';

let harness: Harness;

beforeEach(() => {
  vi.useFakeTimers();
  harness = new Harness();
});

afterEach(() => {
  harness.destroy();
  vi.useRealTimers();
});

/** Connect and let the server answer the first sync; returns the server's storage. */
async function admitted(role = 'editor'): Promise<StoredScene> {
  await settle();
  const socket = harness.last();
  socket.open();
  const scene = new StoredScene(socket, role);
  scene.answerSyncs();
  return scene;
}

describe('ApiGatewayProvider: saved', () => {
  it('is saved with nothing edited', async () => {
    const { provider } = harness.start();
    expect(provider.saved).toBe(true);
    await admitted();
    expect(provider.saved).toBe(true);
    expect(provider.unsyncedChanges).toBe(0);
  });

  it('asks once, a second after the last keystroke, and is saved when the stored state covers the edits', async () => {
    const { provider, doc, saves } = harness.start();
    const scene = await admitted();
    const text = doc.getText('t');
    for (let i = 0; i < 10; i++) {
      text.insert(text.length, 'x');
      await settle(300);
    }
    expect(provider.unsyncedChanges).toBe(10);
    expect(saves).toEqual([false]);
    expect(scene.syncs()).toBe(1); // only the one on open: none per keystroke
    await settle(700);
    expect(scene.syncs()).toBe(2);
    scene.store();
    scene.answerSyncs();
    expect(provider.saved).toBe(true);
    expect(saves).toEqual([false, true]);
    await settle(60_000);
    expect(scene.syncs()).toBe(3); // then only the 60 s resync
  });

  it('asks at most every 10 s while typing goes on', async () => {
    const { doc } = harness.start();
    const scene = await admitted();
    const text = doc.getText('t');
    for (let i = 0; i < 150; i++) {
      text.insert(text.length, 'y');
      await settle(200);
      scene.store();
      scene.answerSyncs();
    }
    // 30 s of typing: the sync on open, then one per 10 s (none per keystroke).
    expect(scene.syncs()).toBe(4);
  });

  it('stays unsaved while the server has not stored an edit, and asks again, later each time', async () => {
    const { provider, doc } = harness.start();
    const scene = await admitted();
    doc.getText('t').insert(0, 'INT. CAFE');
    await settle(1_000);
    expect(scene.answerSyncs()).toBe(1); // answered from storage that lacks the edit
    expect(provider.saved).toBe(false);
    await settle(1_000);
    expect(scene.answerSyncs()).toBe(1);
    await settle(1_999);
    expect(scene.answerSyncs()).toBe(0);
    await settle(1);
    expect(scene.answerSyncs()).toBe(1);
    expect(provider.saved).toBe(false);
    // The provider's answers to the server's SyncStep1 carried the edit again; once stored:
    scene.store();
    await settle(4_000);
    scene.answerSyncs();
    expect(provider.saved).toBe(true);
    expect(scene.doc.getText('t').toString()).toBe('INT. CAFE');
  });

  it('needs a deletion in the stored delete set, not only the clocks in its state vector', async () => {
    const { provider, doc } = harness.start();
    const scene = await admitted();
    doc.getText('t').insert(0, 'RICK ILSA');
    await settle(1_000);
    scene.store();
    scene.answerSyncs();
    expect(provider.saved).toBe(true);
    doc.getText('t').delete(0, 5); // a deletion creates no clock: the state vector cannot show it
    expect(provider.saved).toBe(false);
    await settle(1_000);
    scene.answerSyncs(); // not stored yet
    expect(provider.saved).toBe(false);
    scene.store();
    await settle(1_000);
    scene.answerSyncs();
    expect(provider.saved).toBe(true);
    expect(scene.doc.getText('t').toString()).toBe('ILSA');
  });

  it('counts edits made offline until the server stores them after reconnecting', async () => {
    const { provider, doc } = harness.start();
    const first = await admitted();
    first.store();
    harness.last().serverClose(1001);
    doc.getText('t').insert(0, 'written on the train');
    expect(provider.unsyncedChanges).toBe(1);
    await settle(200);
    const socket = harness.last();
    socket.open();
    const scene = new StoredScene(socket);
    scene.answerSyncs(); // its SyncStep1 makes the provider send the offline edit
    expect(provider.saved).toBe(false);
    scene.store();
    await settle(1_000); // the retry
    scene.answerSyncs();
    expect(provider.saved).toBe(true);
    expect(scene.doc.getText('t').toString()).toBe('written on the train');
  });

  it('counts what the doc held before the provider started', async () => {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, 'loaded from local storage');
    const { provider } = harness.start({}, doc);
    expect(provider.saved).toBe(false);
    const scene = await admitted();
    scene.store();
    await settle(1_000);
    scene.answerSyncs();
    expect(provider.saved).toBe(true);
  });

  it('is saved for a viewer with nothing of its own, and never claims a viewer\'s edit is saved', async () => {
    const { provider, doc } = harness.start();
    const scene = await admitted('viewer');
    expect(provider.saved).toBe(true);
    doc.getText('t').insert(0, 'a viewer types');
    // Never sent (a viewer may not write), so never stored: not saved, and nothing asked.
    expect(provider.saved).toBe(false);
    expect(provider.unsyncedChanges).toBeGreaterThan(0);
    await settle(5_000);
    expect(scene.syncs()).toBe(1);
    expect(provider.saved).toBe(false);
  });

  it('announces the role from connected', async () => {
    const { provider } = harness.start();
    const roles: string[] = [];
    provider.on('role', (role) => roles.push(role));
    await admitted('owner');
    expect(provider.role).toBe('owner');
    expect(roles).toEqual(['owner']);
  });
});
