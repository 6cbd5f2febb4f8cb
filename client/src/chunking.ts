/**
 * Splitting messages too large for one API Gateway frame into `chunk` frames, and putting
 * the server's chunks back together (docs/design.md §2). API Gateway caps a frame at 32 KB; the
 * client keeps every frame at or under 30,000 bytes, envelope included.
 */

import type { ChunkFields } from './framing.js';

export const CLIENT_FRAME_LIMIT = 30_000;

const utf8 = new TextEncoder();

export function utf8Length(text: string): number {
  return utf8.encode(text).length;
}

/**
 * Bytes that one code point takes once JSON.stringify has put it inside a string literal
 * and the result is UTF-8 encoded. The protocol's JSON is ASCII, but quotes and backslashes
 * of the original text are escaped again inside `data`, so a slice costs more than its length.
 */
function escapedCost(codePoint: number): number {
  if (codePoint === 0x22 || codePoint === 0x5c) return 2; // \" and \\
  if (codePoint < 0x20) {
    // \b \t \n \f \r have short escapes; the other control characters become \u00XX.
    return codePoint === 8 || codePoint === 9 || codePoint === 10 || codePoint === 12 || codePoint === 13
      ? 2
      : 6;
  }
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint >= 0xd800 && codePoint <= 0xdfff) return 6; // a lone surrogate becomes \uXXXX
  if (codePoint < 0x10000) return 3;
  return 4;
}

/**
 * Cuts `text` into slices whose escaped size is at most `budget` bytes each. Cuts fall
 * between code points, never inside a surrogate pair: a receiver in another language (the
 * Python server) concatenates decoded slices, and two halves of a pair would not rejoin.
 */
function sliceByBudget(text: string, budget: number): string[] {
  const slices: string[] = [];
  let start = 0;
  let used = 0;
  let i = 0;
  while (i < text.length) {
    const codePoint = text.codePointAt(i) ?? 0;
    const width = codePoint > 0xffff ? 2 : 1;
    const cost = escapedCost(codePoint);
    if (used + cost > budget) {
      slices.push(text.slice(start, i));
      start = i;
      used = 0;
    }
    used += cost;
    i += width;
  }
  if (start < text.length) slices.push(text.slice(start));
  return slices;
}

function chunkFrame(fields: ChunkFields): string {
  return JSON.stringify({ action: 'chunk', ...fields });
}

/**
 * The `chunk` frames that carry `json` (the full JSON text of one client message) under
 * chunk id `id`, each at most `limit` bytes including its envelope.
 */
export function splitIntoChunks(json: string, id: string, limit = CLIENT_FRAME_LIMIT): string[] {
  // The envelope grows with the digits of seq and total, which depend on how many slices
  // there are: size it for d-digit numbers and retry with d+1 if the slices do not fit.
  for (let digits = 1; digits <= 15; digits++) {
    const largest = 10 ** digits - 1;
    const envelope = utf8Length(chunkFrame({ id, seq: largest, total: largest, data: '' }));
    const budget = limit - envelope;
    if (budget < 6) throw new RangeError(`frame limit ${limit} leaves no room for data`);
    const slices = sliceByBudget(json, budget);
    if (slices.length > largest) continue;
    return slices.map((data, seq) => chunkFrame({ id, seq, total: slices.length, data }));
  }
  throw new RangeError('message too large to chunk');
}

/**
 * The frames to send for one client message: the message itself when it fits in `limit`
 * bytes, otherwise its chunks under a fresh id from `nextId`.
 */
export function frameMessage(json: string, nextId: () => string, limit = CLIENT_FRAME_LIMIT): string[] {
  // UTF-8 never takes fewer bytes than UTF-16 code units, nor more than three per unit.
  if (json.length * 3 <= limit || utf8Length(json) <= limit) return [json];
  return splitIntoChunks(json, nextId(), limit);
}

/** A chunk that contradicts the others of its id. */
export class ChunkError extends Error {
  override name = 'ChunkError';
}

interface PendingMessage {
  total: number;
  parts: (string | undefined)[];
  received: number;
  startedAt: number;
}

/**
 * Collects chunks, which may arrive in any order, and hands back each message's JSON text
 * once, when its last chunk arrives. Incomplete messages are dropped after `maxAgeMs`
 * (their chunks were lost with a connection; the periodic resync repairs the state).
 */
export class ChunkReassembler {
  private readonly pending = new Map<string, PendingMessage>();

  constructor(
    private readonly maxAgeMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** The original JSON text if `chunk` completes its message, otherwise `undefined`. */
  add(chunk: ChunkFields): string | undefined {
    this.dropStale();
    const { id, seq, total, data } = chunk;
    if (!Number.isInteger(total) || total < 1) throw new ChunkError(`chunk ${id}: bad total ${total}`);
    if (!Number.isInteger(seq) || seq < 0 || seq >= total) {
      throw new ChunkError(`chunk ${id}: seq ${seq} outside 0..${total - 1}`);
    }
    let message = this.pending.get(id);
    if (message === undefined) {
      message = { total, parts: new Array<string | undefined>(total), received: 0, startedAt: this.now() };
      this.pending.set(id, message);
    } else if (message.total !== total) {
      throw new ChunkError(`chunk ${id}: total changed from ${message.total} to ${total}`);
    }
    if (message.parts[seq] === undefined) {
      message.parts[seq] = data;
      message.received += 1;
    }
    if (message.received < message.total) return undefined;
    this.pending.delete(id);
    return message.parts.join('');
  }

  clear(): void {
    this.pending.clear();
  }

  private dropStale(): void {
    const cutoff = this.now() - this.maxAgeMs;
    for (const [id, message] of this.pending) {
      if (message.startedAt < cutoff) this.pending.delete(id);
    }
  }
}
