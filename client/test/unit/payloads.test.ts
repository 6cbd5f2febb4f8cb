import { Buffer } from 'node:buffer';

import { describe, expect, it } from 'vitest';
import { Awareness } from 'y-protocols/awareness';
import * as Y from 'yjs';

import {
  applyAwarenessData,
  applySyncData,
  awarenessData,
  PayloadError,
  SYNC_STEP1,
  SYNC_STEP2,
  SYNC_UPDATE,
  syncStep1Data,
  updateData,
} from '../../src/payloads.js';

function bytes(data: string): number[] {
  return [...Buffer.from(data, 'base64')];
}

function docWith(text: string): Y.Doc {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  return doc;
}

describe('payloads', () => {
  it('encode canonical, padded base64 that the strict server accepts', () => {
    for (const data of [syncStep1Data(docWith('a')), updateData(new Uint8Array([1, 2, 3, 4]))]) {
      expect(data).toMatch(/^[A-Za-z0-9+/]*={0,2}$/);
      expect(data.length % 4).toBe(0);
      expect(Buffer.from(bytes(data)).toString('base64')).toBe(data);
    }
  });

  it('frame SyncStep1 as [0, 0, stateVector] and updates as [0, 2, update]', () => {
    const doc = docWith('hello');
    const sv = Y.encodeStateVector(doc);
    expect(bytes(syncStep1Data(doc))).toEqual([0, 0, sv.length, ...sv]);
    expect(bytes(updateData(new Uint8Array([9, 8, 7])))).toEqual([0, 2, 3, 9, 8, 7]);
  });

  it('answer a SyncStep1 with the SyncStep2 of exactly what the other side lacks', () => {
    const server = docWith('from the server');
    const client = docWith('offline edit');
    const answer = applySyncData(syncStep1Data(server), client, 'origin');
    expect(answer.type).toBe(SYNC_STEP1);
    expect(bytes(answer.reply ?? '').slice(0, 2)).toEqual([0, 1]);
    expect(applySyncData(answer.reply ?? '', server, 'origin').type).toBe(SYNC_STEP2);
    expect(server.getText('t').toString()).toContain('offline edit');
  });

  it('send no answer when the other side lacks nothing', () => {
    const a = docWith('same');
    const b = new Y.Doc();
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    expect(applySyncData(syncStep1Data(b), a, null).reply).toBeUndefined();
  });

  it('apply updates with the given origin', () => {
    const source = new Y.Doc();
    const target = new Y.Doc();
    const origins: unknown[] = [];
    target.on('update', (_u: Uint8Array, origin: unknown) => origins.push(origin));
    source.on('update', (update: Uint8Array) => {
      expect(applySyncData(updateData(update), target, 'remote').type).toBe(SYNC_UPDATE);
    });
    source.getText('t').insert(0, 'typed');
    expect(target.getText('t').toString()).toBe('typed');
    expect(origins).toEqual(['remote']);
  });

  it('carry awareness states, and null for a departure', () => {
    const here = new Awareness(new Y.Doc());
    const there = new Awareness(new Y.Doc());
    here.setLocalStateField('user', { name: 'ILSA', color: '#123456' });
    const data = awarenessData(here, [here.clientID]);
    expect(bytes(data)[0]).toBe(1);
    applyAwarenessData(data, there, 'remote');
    expect(there.getStates().get(here.clientID)).toEqual({ user: { name: 'ILSA', color: '#123456' } });
    applyAwarenessData(awarenessData(here, [here.clientID], new Map()), there, 'remote');
    expect(there.getStates().has(here.clientID)).toBe(false);
    here.destroy();
    there.destroy();
  });

  it('refuse a message of the wrong kind', () => {
    const awareness = new Awareness(new Y.Doc());
    expect(() => applyAwarenessData(updateData(new Uint8Array([0, 0])), awareness, null)).toThrow(PayloadError);
    expect(() => applySyncData(awarenessData(awareness, [awareness.clientID]), new Y.Doc(), null)).toThrow(PayloadError);
    awareness.destroy();
  });
});
