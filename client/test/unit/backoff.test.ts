import { describe, expect, it } from 'vitest';

import { backoffDelay } from '../../src/backoff.js';

const options = { initialDelay: 200, maxDelay: 10_000 };

describe('backoffDelay', () => {
  it('doubles its ceiling with every attempt up to maxDelay', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelay(attempt, { ...options, random: () => 1 }));
    expect(ceilings).toEqual([200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000]);
  });

  it('waits at least half the ceiling, so a refused client never retries at once', () => {
    expect(backoffDelay(0, { ...options, random: () => 0 })).toBe(100);
    expect(backoffDelay(10, { ...options, random: () => 0 })).toBe(5_000);
  });

  it('stays within [ceiling / 2, ceiling] for any random draw', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(options.maxDelay, options.initialDelay * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, options);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('spreads clients that retry together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => Math.round(backoffDelay(5, options))));
    expect(delays.size).toBeGreaterThan(25);
  });

  it('never exceeds maxDelay, however many attempts', () => {
    expect(backoffDelay(5_000, { ...options, random: () => 0.999 })).toBeLessThanOrEqual(10_000);
    expect(Number.isFinite(backoffDelay(Number.MAX_SAFE_INTEGER, options))).toBe(true);
  });
});
