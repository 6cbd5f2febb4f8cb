/**
 * The Yjs side of the protocol: standard y-protocols messages, base64 encoded (RFC 4648,
 * with padding) for the `data` field of a frame.
 */

import { fromBase64, toBase64 } from 'lib0/buffer';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as time from 'lib0/time';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import type * as Y from 'yjs';

export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;

export type SyncMessageType =
  | typeof syncProtocol.messageYjsSyncStep1
  | typeof syncProtocol.messageYjsSyncStep2
  | typeof syncProtocol.messageYjsUpdate;

/** A Yjs v1 update that carries nothing: no structs, no deletions. */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.length === 2 && update[0] === 0 && update[1] === 0;
}

/** `[0, 0, stateVector]`: "here is what I have" (the `sync` action). */
export function syncStep1Data(doc: Y.Doc): string {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  syncProtocol.writeSyncStep1(encoder, doc);
  return toBase64(encoding.toUint8Array(encoder));
}

/** `[0, 2, update]`: a local change (the `update` action). */
export function updateData(update: Uint8Array): string {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  syncProtocol.writeUpdate(encoder, update);
  return toBase64(encoding.toUint8Array(encoder));
}

/** `[1, awarenessUpdate]` for the given Yjs client ids (the `awareness` action). */
export function awarenessData(
  awareness: awarenessProtocol.Awareness,
  clients: number[],
  states: Map<number, Record<string, unknown>> = awareness.states,
): string {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clients, states));
  return toBase64(encoding.toUint8Array(encoder));
}

export class PayloadError extends Error {
  override name = 'PayloadError';
}

function openMessage(data: string, expected: number): decoding.Decoder {
  const decoder = decoding.createDecoder(fromBase64(data));
  const kind = decoding.readVarUint(decoder);
  if (kind !== expected) throw new PayloadError(`expected y-protocols message ${expected}, got ${kind}`);
  return decoder;
}

export interface AppliedSync {
  type: SyncMessageType;
  /** The message's payload: a state vector (SyncStep1) or an update (SyncStep2, Update). */
  payload: Uint8Array;
  /** The `data` of the `update` to send back: our SyncStep2 answering the server's SyncStep1. */
  reply?: string;
}

/**
 * Applies a server sync message (SyncStep1, SyncStep2 or Update) to `doc` with `origin` as
 * the transaction origin. For a SyncStep1 it returns the SyncStep2 to send back, unless that
 * answer carries nothing (the server would only discard it: no need to wake a Lambda).
 */
export function applySyncData(data: string, doc: Y.Doc, origin: unknown): AppliedSync {
  const decoder = openMessage(data, MESSAGE_SYNC);
  // Read the payload on a copy of the decoder first: readSyncMessage consumes it.
  const peek = decoding.clone(decoder);
  decoding.readVarUint(peek); // the sync message type, returned by readSyncMessage below
  const payload = decoding.readVarUint8Array(peek);
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  const type = syncProtocol.readSyncMessage(decoder, encoder, doc, origin) as SyncMessageType;
  if (type !== syncProtocol.messageYjsSyncStep1) return { type, payload };
  const reply = encoding.toUint8Array(encoder);
  const replyDecoder = decoding.createDecoder(reply);
  decoding.readVarUint(replyDecoder); // MESSAGE_SYNC
  decoding.readVarUint(replyDecoder); // messageYjsSyncStep2
  const update = decoding.readVarUint8Array(replyDecoder);
  return isEmptyUpdate(update) ? { type, payload } : { type, payload, reply: toBase64(reply) };
}

/**
 * Applies a server awareness message; `origin` marks the change as remote. With `ages`
 * (milliseconds since the server stored each state, docs/presence.md), each remote state
 * counts as renewed when the server stored it, not when this message arrived: y-protocols
 * then drops it 30 s after its owner last wrote it, as if every renewal had been relayed,
 * and a roster that repeats a state refreshes it even though its clock did not move.
 */
export function applyAwarenessData(
  data: string,
  awareness: awarenessProtocol.Awareness,
  origin: unknown,
  ages?: Record<string, number>,
  now: number = time.getUnixTime(), // y-protocols' clock (lib0 keeps its own Date.now)
): void {
  const decoder = openMessage(data, MESSAGE_AWARENESS);
  const before = new Map<number, number>();
  if (ages !== undefined) {
    for (const [client, meta] of awareness.meta) before.set(client, meta.lastUpdated);
  }
  awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), origin);
  if (ages === undefined) return;
  for (const [key, age] of Object.entries(ages)) {
    const client = Number(key);
    const meta = awareness.meta.get(client);
    if (client === awareness.clientID || meta === undefined || !awareness.states.has(client)) continue;
    meta.lastUpdated = Math.max(before.get(client) ?? 0, now - age);
  }
}

export const SYNC_STEP1 = syncProtocol.messageYjsSyncStep1;
export const SYNC_STEP2 = syncProtocol.messageYjsSyncStep2;
export const SYNC_UPDATE = syncProtocol.messageYjsUpdate;
