import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, retryDelayMs } from '../../src/dag/retry.js';

const linear = (ms: number, max: number | null = null) => ({ retryDelayMs: ms, retryExponentialBackoff: false, maxRetryDelayMs: max });
const expo = (ms: number, max: number | null = null) => ({ retryDelayMs: ms, retryExponentialBackoff: true, maxRetryDelayMs: max });
const KEY = 'etl#extract#manual__2024-01-01';

describe('retryDelayMs', () => {
  describe('without exponential backoff', () => {
    it('is retryDelay on every try', () => {
      for (const tryNumber of [1, 2, 5, 30]) expect(retryDelayMs(linear(300_000), tryNumber, KEY)).toBe(300_000);
    });

    it('has no jitter', () => {
      expect(retryDelayMs(linear(1_000), 1, 'a')).toBe(retryDelayMs(linear(1_000), 1, 'b'));
    });

    it('may be zero', () => {
      expect(retryDelayMs(linear(0), 3, KEY)).toBe(0);
    });

    it('ignores maxRetryDelay, as Airflow applies max_retry_delay only to exponential backoff', () => {
      expect(retryDelayMs(linear(60_000, 1_000), 1, KEY)).toBe(60_000);
    });
  });

  describe('with exponential backoff', () => {
    it('stays within [retryDelay * 2^(try-1), 2 * that) and grows with each try', () => {
      const delay = 1_000;
      let previous = 0;
      for (let tryNumber = 1; tryNumber <= 10; tryNumber++) {
        const min = delay * 2 ** (tryNumber - 1);
        const d = retryDelayMs(expo(delay), tryNumber, KEY);
        expect(d).toBeGreaterThanOrEqual(min);
        expect(d).toBeLessThan(2 * min);
        expect(d).toBeGreaterThan(previous); // lower bound of try n+1 = upper bound of try n
        expect(Number.isInteger(d)).toBe(true);
        previous = d;
      }
    });

    it("matches Airflow's formula: min + sha1(key#try) mod min", () => {
      // Computed independently with Python's hashlib:
      //   m = d * 2**(t-1); m + int(sha1(f"{key}#{t}".encode()).hexdigest(), 16) % m
      expect(retryDelayMs(expo(1_000), 1, KEY)).toBe(1_242);
      expect(retryDelayMs(expo(1_000), 3, KEY)).toBe(7_609);
      expect(retryDelayMs(expo(300_000), 2, 'etl#load#r1')).toBe(612_820);
    });

    it('has jitter that is deterministic per key and try', () => {
      const a1 = retryDelayMs(expo(10_000), 2, 'dag#a#run1');
      expect(retryDelayMs(expo(10_000), 2, 'dag#a#run1')).toBe(a1);
      // Different task instances spread out instead of retrying in lockstep.
      const spread = new Set(['dag#a#run1', 'dag#b#run1', 'dag#a#run2', 'dag#c#run1', 'dag#d#run1'].map((k) => retryDelayMs(expo(10_000), 2, k)));
      expect(spread.size).toBeGreaterThan(1);
    });

    it('treats a try number below 1 as the first try', () => {
      expect(retryDelayMs(expo(1_000), 0, KEY)).toBe(retryDelayMs(expo(1_000), 1, KEY));
      expect(retryDelayMs(expo(1_000), Number.NaN, KEY)).toBe(retryDelayMs(expo(1_000), 1, KEY));
    });

    it('has a floor of 1 ms, like Airflow (min_backoff >= 1) so a zero delay does not divide by zero', () => {
      expect(retryDelayMs(expo(0), 1, KEY)).toBe(1);
      expect(retryDelayMs(expo(0), 9, KEY)).toBe(1);
    });

    it('is clamped by maxRetryDelay', () => {
      expect(retryDelayMs(expo(1_000, 5_000), 10, KEY)).toBe(5_000);
      // below the cap, the cap changes nothing
      expect(retryDelayMs(expo(1_000, 5_000), 1, KEY)).toBe(retryDelayMs(expo(1_000), 1, KEY));
    });

    it('is clamped to 0 by a maxRetryDelay of 0 (null, not 0, means no cap)', () => {
      expect(retryDelayMs(expo(1_000, 0), 3, KEY)).toBe(0);
    });

    it('never exceeds 24 h without maxRetryDelay, even for absurd try numbers', () => {
      expect(MAX_RETRY_DELAY_MS).toBe(86_400_000);
      expect(retryDelayMs(expo(3_600_000), 6, KEY)).toBe(MAX_RETRY_DELAY_MS); // 32 h minimum -> capped
      expect(retryDelayMs(expo(1_000), 2_000, KEY)).toBe(MAX_RETRY_DELAY_MS); // 2^1999 overflows to Infinity
      expect(retryDelayMs(expo(1_000, 60_000), 2_000, KEY)).toBe(60_000);
    });
  });
});
