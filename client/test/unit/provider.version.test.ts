/**
 * The `version` server message (docs/design.md §2): parsed strictly enough that a listener
 * can trust its fields, and emitted by the provider as its `version` event, after the
 * restore's content (an ordinary `update` before it) is in the doc.
 */

import * as encoding from 'lib0/encoding';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';

import { FrameError, parseServerMessage } from '../../src/framing.js';
import type { ProviderEvents, VersionEvent } from '../../src/provider.js';
import { b64, connected, Harness, settle } from './providerHarness.js';

const entry = {
  versionId: '1767225600000-0a1b2c3d',
  label: 'draft one',
  createdAt: '2026-01-01T00:00:00.000Z',
  createdBy: 'alice',
  bytes: 1234,
  auto: false,
};

let harness: Harness;

beforeEach(() => {
  vi.useFakeTimers();
  harness = new Harness();
});

afterEach(() => {
  harness.destroy();
  vi.useRealTimers();
});

describe('the version message', () => {
  it('parses created and restored, with savedBefore', () => {
    const created = { type: 'version', event: 'created', version: entry };
    expect(parseServerMessage(JSON.stringify(created))).toEqual(created);
    const restored = { type: 'version', event: 'restored', version: entry, savedBefore: '1767225700000-ffffffff' };
    expect(parseServerMessage(JSON.stringify(restored))).toEqual(restored);
    // A newer server's fields are dropped, not passed on.
    const extra = { ...created, version: { ...entry, extra: 1 }, more: true };
    expect(parseServerMessage(JSON.stringify(extra))).toEqual(created);
  });

  it.each([
    ['no version', { type: 'version', event: 'created' }],
    ['no event', { type: 'version', version: entry }],
    ['a version id that is not a string', { type: 'version', event: 'created', version: { ...entry, versionId: 7 } }],
    ['bytes that are not an integer', { type: 'version', event: 'created', version: { ...entry, bytes: '12' } }],
    ['auto that is not a boolean', { type: 'version', event: 'created', version: { ...entry, auto: 'no' } }],
    ['savedBefore that is not a string', { type: 'version', event: 'restored', version: entry, savedBefore: 1 }],
  ])('refuses one with %s', (_what, frame) => {
    expect(() => parseServerMessage(JSON.stringify(frame))).toThrow(FrameError);
  });
});

describe("ApiGatewayProvider's version event", () => {
  async function admitted() {
    const started = harness.start();
    await settle();
    const socket = harness.last();
    socket.open();
    socket.receive(connected());
    const versions: VersionEvent[] = [];
    const errors: Error[] = [];
    started.provider.on('version', (event) => versions.push(event));
    started.provider.on('protocol-error', (error) => errors.push(error));
    return { ...started, socket, versions, errors };
  }

  it('fires for every version message, after the restored content is in the doc', async () => {
    const { provider, doc, socket, versions } = await admitted();
    const seen: string[] = [];
    const onVersion: ProviderEvents['version'] = (event, from) => {
      expect(from).toBe(provider);
      seen.push(`${event.event}:${doc.getText('scene').toString()}`);
    };
    provider.on('version', onVersion);

    socket.receive({ type: 'version', event: 'created', version: entry });
    // The server's restore: its update first, then the message.
    const server = new Y.Doc();
    server.getText('scene').insert(0, 'FADE IN:');
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0); // messageSync
    syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(server));
    socket.receive({ type: 'update', data: b64(encoding.toUint8Array(encoder)) });
    socket.receive({ type: 'version', event: 'restored', version: entry, savedBefore: 'v-before' });

    expect(versions).toEqual([
      { event: 'created', version: entry },
      { event: 'restored', version: entry, savedBefore: 'v-before' },
    ]);
    expect(seen).toEqual(['created:', 'restored:FADE IN:']);
  });

  it('comes through chunked like any message', async () => {
    const { socket, versions } = await admitted();
    const text = JSON.stringify({ type: 'version', event: 'created', version: entry });
    const half = Math.ceil(text.length / 2);
    socket.receive({ type: 'chunk', id: 'k1', seq: 0, total: 2, data: text.slice(0, half) });
    socket.receive({ type: 'chunk', id: 'k1', seq: 1, total: 2, data: text.slice(half) });
    expect(versions).toEqual([{ event: 'created', version: entry }]);
  });

  it('drops a malformed one as a protocol error, and the connection goes on', async () => {
    const { provider, socket, versions, errors } = await admitted();
    socket.receive({ type: 'version', event: 'created', version: { ...entry, bytes: null } });
    expect(versions).toEqual([]);
    expect(errors.map((error) => error.message)).toEqual(["'bytes' is not an integer"]);
    expect(provider.status).toBe('connected');
    socket.receive({ type: 'version', event: 'created', version: entry });
    expect(versions).toHaveLength(1);
  });
});

