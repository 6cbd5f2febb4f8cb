import { describe, expect, it } from 'vitest';

import {
  CLIENT_FRAME_LIMIT,
  ChunkError,
  ChunkReassembler,
  frameMessage,
  splitIntoChunks,
  utf8Length,
} from '../../src/chunking.js';

interface ParsedChunk {
  action: string;
  id: string;
  seq: number;
  total: number;
  data: string;
}

function parse(frames: string[]): ParsedChunk[] {
  return frames.map((frame) => JSON.parse(frame) as ParsedChunk);
}

/** A deterministic shuffle, so a failure reproduces. */
function shuffled<T>(items: T[], seed = 7): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function reassemble(frames: string[]): string | undefined {
  const reassembler = new ChunkReassembler();
  let whole: string | undefined;
  for (const chunk of parse(frames)) {
    const result = reassembler.add(chunk);
    if (result !== undefined) {
      expect(whole).toBeUndefined();
      whole = result;
    }
  }
  expect(reassembler.pendingCount).toBe(0);
  return whole;
}

function bigSyncMessage(bytes: number): string {
  // base64 of arbitrary bytes: the realistic payload of a large update.
  const raw = Buffer.alloc(Math.ceil((bytes * 3) / 4));
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 131 + 7) % 256;
  return JSON.stringify({ action: 'update', data: raw.toString('base64') });
}

describe('frameMessage', () => {
  it('sends a message that fits as it is', () => {
    const json = JSON.stringify({ action: 'ping' });
    expect(frameMessage(json, () => 'unused')).toEqual([json]);
  });

  it('keeps a message of exactly the limit whole and chunks one byte more', () => {
    const prefix = '{"action":"update","data":"';
    const fill = (n: number) => `${prefix}${'A'.repeat(n - prefix.length - 2)}"}`;
    expect(frameMessage(fill(CLIENT_FRAME_LIMIT), () => 'x')).toHaveLength(1);
    const frames = frameMessage(fill(CLIENT_FRAME_LIMIT + 1), () => 'x');
    expect(frames.length).toBeGreaterThan(1);
    expect(parse(frames)[0]?.action).toBe('chunk');
  });

  it('gives each chunked message the next id', () => {
    let n = 0;
    const nextId = () => `c${++n}`;
    const json = bigSyncMessage(70_000);
    expect(parse(frameMessage(json, nextId))[0]?.id).toBe('c1');
    expect(parse(frameMessage(json, nextId))[0]?.id).toBe('c2');
  });
});

describe('splitIntoChunks', () => {
  it('keeps every frame within 30,000 bytes, envelope included, and loses nothing', () => {
    const json = bigSyncMessage(300_000);
    const frames = splitIntoChunks(json, 'c1');
    expect(frames.length).toBeGreaterThanOrEqual(10);
    for (const frame of frames) expect(utf8Length(frame)).toBeLessThanOrEqual(CLIENT_FRAME_LIMIT);
    // Frames are filled, not merely small: at most one partly empty frame per message.
    expect(frames.length).toBe(Math.ceil(json.length / (CLIENT_FRAME_LIMIT - 80)));
    const chunks = parse(frames);
    expect(chunks.map((c) => c.seq)).toEqual([...chunks.keys()]);
    expect(new Set(chunks.map((c) => c.total))).toEqual(new Set([frames.length]));
    expect(chunks.every((c) => c.action === 'chunk' && c.id === 'c1')).toBe(true);
    expect(chunks.map((c) => c.data).join('')).toBe(json);
  });

  it('counts the escaping of quotes and backslashes inside data', () => {
    // Each " and \ of the original doubles inside the chunk's data string.
    const json = JSON.stringify({ action: 'update', data: '"\\'.repeat(40_000) });
    const frames = splitIntoChunks(json, 'quotes');
    for (const frame of frames) expect(utf8Length(frame)).toBeLessThanOrEqual(CLIENT_FRAME_LIMIT);
    expect(reassemble(frames)).toBe(json);
  });

  it('measures bytes, not characters, and never splits a surrogate pair', () => {
    const json = JSON.stringify({ note: 'scène 🎬 台本 '.repeat(8_000) });
    const frames = splitIntoChunks(json, 'utf8');
    for (const frame of frames) {
      expect(utf8Length(frame)).toBeLessThanOrEqual(CLIENT_FRAME_LIMIT);
      const { data } = JSON.parse(frame) as ParsedChunk;
      // A lone surrogate would not survive a UTF-8 round trip.
      expect(Buffer.from(data, 'utf8').toString('utf8')).toBe(data);
    }
    expect(reassemble(frames)).toBe(json);
  });

  it('grows the envelope when seq and total need more digits', () => {
    const limit = 120;
    const json = 'x'.repeat(8_000);
    const frames = splitIntoChunks(json, 'digits', limit);
    expect(frames.length).toBeGreaterThan(99);
    for (const frame of frames) expect(utf8Length(frame)).toBeLessThanOrEqual(limit);
    expect(reassemble(frames)).toBe(json);
  });

  it('refuses a limit that leaves no room for data', () => {
    expect(() => splitIntoChunks('x'.repeat(100), 'tiny', 50)).toThrow(RangeError);
  });
});

describe('ChunkReassembler', () => {
  const json = bigSyncMessage(200_000);
  const frames = splitIntoChunks(json, 's1');

  it('rebuilds a message from chunks in any order, once', () => {
    expect(reassemble(shuffled(frames))).toBe(json);
    expect(reassemble([...frames].reverse())).toBe(json);
  });

  it('ignores a repeated chunk', () => {
    const reassembler = new ChunkReassembler();
    const chunks = parse(frames);
    const first = chunks[0] as ParsedChunk;
    expect(reassembler.add(first)).toBeUndefined();
    expect(reassembler.add(first)).toBeUndefined();
    const results = chunks.slice(1).map((c) => reassembler.add(c));
    expect(results.at(-1)).toBe(json);
  });

  it('keeps interleaved messages apart', () => {
    const other = bigSyncMessage(90_000).replace('update', 'awareness');
    const mixed = shuffled([...parse(frames), ...parse(splitIntoChunks(other, 's2'))], 3);
    const reassembler = new ChunkReassembler();
    const done = mixed.map((c) => reassembler.add(c)).filter((r) => r !== undefined);
    expect(done.sort()).toEqual([json, other].sort());
  });

  it('refuses chunks that contradict their id', () => {
    const reassembler = new ChunkReassembler();
    reassembler.add({ id: 'a', seq: 0, total: 3, data: 'x' });
    expect(() => reassembler.add({ id: 'a', seq: 1, total: 4, data: 'y' })).toThrow(ChunkError);
    expect(() => reassembler.add({ id: 'b', seq: 3, total: 3, data: 'y' })).toThrow(ChunkError);
    expect(() => reassembler.add({ id: 'b', seq: -1, total: 3, data: 'y' })).toThrow(ChunkError);
    expect(() => reassembler.add({ id: 'b', seq: 0, total: 0, data: 'y' })).toThrow(ChunkError);
  });

  it('drops a message whose chunks stopped coming', () => {
    let now = 0;
    const reassembler = new ChunkReassembler(1_000, () => now);
    reassembler.add({ id: 'lost', seq: 0, total: 2, data: '{"type":' });
    now = 2_000;
    expect(reassembler.add({ id: 'fresh', seq: 0, total: 2, data: '{"type":' })).toBeUndefined();
    expect(reassembler.pendingCount).toBe(1);
  });
});
