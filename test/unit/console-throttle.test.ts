/**
 * The console's wrong-token throttle (src/console/throttle.ts) on its own: free failures, a wait that doubles up
 * to a cap, entries forgotten after a quiet while, and a Map that stays bounded whatever the number of sources.
 * No server, no Redis: time is passed in.
 */
import { describe, expect, it } from '@jest/globals';

import { makeFailureThrottle } from '../../src/console/throttle.js';

const T0 = 1_700_000_000_000;

describe('makeFailureThrottle', () => {
  it('lets the first failures through, then asks for a wait that doubles with each failure, up to the cap', () => {
    const throttle = makeFailureThrottle({ freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000 });
    const waits = Array.from({ length: 9 }, (_, i) => throttle.fail('10.0.0.1', T0 + i));
    expect(waits).toEqual([0, 0, 0, 1000, 2000, 4000, 8000, 8000, 8000]);
    // waitMs counts from the last failure and does not count itself.
    expect(throttle.waitMs('10.0.0.1', T0 + 8 + 3000)).toBe(5000);
    expect(throttle.waitMs('10.0.0.1', T0 + 8 + 3000)).toBe(5000);
    expect(throttle.waitMs('10.0.0.1', T0 + 8 + 9000)).toBe(0);
    // Other sources are not affected.
    expect(throttle.waitMs('10.0.0.2', T0)).toBe(0);
    expect(throttle.fail('10.0.0.2', T0)).toBe(0);
  });

  it('forgets a source once it has been quiet for forgetAfterMs', () => {
    const throttle = makeFailureThrottle({ freeFailures: 1, baseDelayMs: 1000, maxDelayMs: 4000, forgetAfterMs: 60_000 });
    for (let i = 0; i < 5; i += 1) throttle.fail('a', T0);
    expect(throttle.waitMs('a', T0 + 1000)).toBe(3000);
    expect(throttle.waitMs('a', T0 + 60_000)).toBe(0);
    expect(throttle.size).toBe(0);
    // Starting afresh: the first failure is free again.
    expect(throttle.fail('a', T0 + 60_001)).toBe(0);
  });

  it('stays bounded after 100k distinct failing addresses, dropping the source that failed longest ago', () => {
    const maxSources = 1000;
    const throttle = makeFailureThrottle({ freeFailures: 0, maxSources });
    // A source that keeps failing stays remembered (each failure moves it to the back).
    let largest = 0;
    for (let i = 0; i < 100_000; i += 1) {
      throttle.fail(`198.51.${Math.floor(i / 256) % 256}.${i % 256}#${i}`, T0 + i);
      if (i % 100 === 0) throttle.fail('203.0.113.9', T0 + i);
      largest = Math.max(largest, throttle.size);
    }
    expect(largest).toBe(maxSources);
    expect(throttle.size).toBe(maxSources);
    expect(throttle.waitMs('203.0.113.9', T0 + 100_000)).toBeGreaterThan(0);
    // The first sources are long gone, the last ones are still there.
    expect(throttle.waitMs('198.51.0.0#0', T0 + 100_000)).toBe(0);
    expect(throttle.waitMs(`198.51.${Math.floor(99_999 / 256) % 256}.${99_999 % 256}#99999`, T0 + 100_000)).toBeGreaterThan(0);
  });

  it('with the defaults the console uses, 100k distinct failing addresses leave at most 10 000 entries', () => {
    const throttle = makeFailureThrottle();
    for (let i = 0; i < 100_000; i += 1) throttle.fail(`2001:db8::${i.toString(16)}`, T0 + i);
    expect(throttle.size).toBe(10_000);
  });

  it('drops expired sources as new failures come in, not only when the same source returns', () => {
    const throttle = makeFailureThrottle({ forgetAfterMs: 1000, maxDelayMs: 1000 });
    for (let i = 0; i < 100_000; i += 1) throttle.fail(`src-${i}`, T0 + i);
    // Only the sources of the last second are still remembered.
    expect(throttle.size).toBeLessThanOrEqual(1000);
  });

  it('keeps the wait finite however many failures a source makes', () => {
    const throttle = makeFailureThrottle({ freeFailures: 0, baseDelayMs: 1000, maxDelayMs: 300_000 });
    let wait = 0;
    for (let i = 0; i < 5000; i += 1) wait = throttle.fail('x', T0);
    expect(wait).toBe(300_000);
  });
});
