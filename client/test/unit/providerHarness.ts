/**
 * Shared by the provider's unit tests: a provider on scripted sockets, and a stand-in for
 * the server's storage (a Y.Doc the test chooses when to write to), which answers a `sync`
 * as functions/collab/actions/sync.py does: `connected`, SyncStep2, then its own SyncStep1
 * unless the caller is a viewer.
 */

import { Buffer } from 'node:buffer';

import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { vi } from 'vitest';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';

import { ApiGatewayProvider, type ApiGatewayProviderOptions, type ConnectionStatus } from '../../src/provider.js';
import { scriptedSockets, type ScriptedSocket } from './scriptedSocket.js';

export const URL = 'wss://example.execute-api.eu-west-1.amazonaws.com/prod';
export const me = { connectionId: 'conn-me', userId: 'u-me', userName: 'ILSA' };

export function connected(role = 'editor') {
  return { type: 'connected', sceneId: 'scene-1', connectionId: me.connectionId, user: me, role, participants: [me] };
}

export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

export function dataBytes(frame: Record<string, unknown>): Uint8Array {
  return new Uint8Array(Buffer.from(String(frame['data']), 'base64'));
}

function syncMessage(write: (encoder: encoding.Encoder) => void): { type: string; data: string } {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0);
  write(encoder);
  return { type: 'sync', data: b64(encoding.toUint8Array(encoder)) };
}

/** Let promises settle and fake time pass. */
export async function settle(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

export class Harness {
  readonly setup = scriptedSockets();
  readonly providers: ApiGatewayProvider[] = [];

  start(options: ApiGatewayProviderOptions = {}, doc = new Y.Doc(), sceneId = 'scene-1') {
    const provider = new ApiGatewayProvider(URL, sceneId, doc, {
      token: 'jwt-1',
      WebSocketPolyfill: this.setup.WebSocketPolyfill,
      probeServer: async () => true,
      ...options,
    });
    this.providers.push(provider);
    const statuses: ConnectionStatus[] = [];
    const saves: boolean[] = [];
    provider.on('status', ({ status }) => statuses.push(status));
    provider.on('saved', (saved) => saves.push(saved));
    return { provider, doc, statuses, saves };
  }

  get sockets(): ScriptedSocket[] {
    return this.setup.sockets;
  }

  last(): ScriptedSocket {
    return this.setup.last();
  }

  destroy(): void {
    for (const provider of this.providers) provider.destroy();
  }
}

/**
 * What the server has stored. `store` applies the provider's `update` frames sent since
 * the last call (an update is stored only when the test says so); `answerSyncs` answers
 * every `sync` frame not yet answered, from what is stored at that moment.
 */
export class StoredScene {
  readonly doc = new Y.Doc();
  private stored = 0;
  private answered = 0;

  constructor(
    private readonly socket: ScriptedSocket,
    private readonly role = 'editor',
  ) {}

  /** Store every `update` the provider sent (its edits, and its answers to our SyncStep1). */
  store(): void {
    const frames = this.socket.frames();
    for (const frame of frames.slice(this.stored)) {
      if (frame['action'] !== 'update') continue;
      Y.applyUpdate(this.doc, payload(frame)); // [0, 1 | 2, update]
    }
    this.stored = frames.length;
  }

  /** The `sync` frames the provider sent so far. */
  syncs(): number {
    return this.socket.actions().filter((action) => action === 'sync').length;
  }

  /** Answer the unanswered `sync` frames; returns how many. */
  answerSyncs(): number {
    const syncs = this.socket.frames().filter((frame) => frame['action'] === 'sync');
    const fresh = syncs.slice(this.answered);
    for (const frame of fresh) {
      const stateVector = payload(frame); // [0, 0, stateVector]
      this.socket.receive(connected(this.role));
      this.socket.receive(syncMessage((e) => syncProtocol.writeSyncStep2(e, this.doc, stateVector)));
      if (this.role !== 'viewer') this.socket.receive(syncMessage((e) => syncProtocol.writeSyncStep1(e, this.doc)));
    }
    this.answered = syncs.length;
    return fresh.length;
  }
}

/** The payload of a y-protocols sync message `[0, type, varUint8Array payload]`. */
function payload(frame: Record<string, unknown>): Uint8Array {
  const decoder = decoding.createDecoder(dataBytes(frame));
  decoding.readVarUint(decoder);
  decoding.readVarUint(decoder);
  return decoding.readVarUint8Array(decoder);
}
