/**
 * The global pacer (src/execution/pacer.ts): calls from several processes' pacers sharing one Redis key are spaced so that
 * no sliding window holds more than the limit, and a pause holds everyone.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { makePacer } from '../../src/execution/pacer.js';
import { pacerLogKey } from '../../src/store/keys.js';
import { defineScripts, pacerPause, pacerReserveRate } from '../../src/store/scripts.js';
import { deletePrefix, redisUrl, uniquePrefix } from '../helpers/harness.js';

const prefix = uniquePrefix('pacer');
const key = `{${prefix}}:pacer`;
const connections: Redis[] = [];
const connect = () => {
  const r = new Redis(redisUrl());
  connections.push(r);
  return defineScripts(r);
};
afterAll(async () => {
  await deletePrefix(redisUrl(), prefix);
  for (const r of connections) r.disconnect();
});

function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i += 1) {
    while ((sorted[i] as number) - (sorted[j] as number) >= windowMs) j += 1;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('pacer', () => {
  it('spaces calls from three pacers (three connections) to the global limit', async () => {
    const pacers = [connect(), connect(), connect()].map((r) => makePacer(r, key, { max: 50, durationMs: 500 }));
    const times: number[] = [];
    // 12 callers in parallel, like 3 workers × concurrency 4.
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const pacer = pacers[i % 3]!;
        for (let n = 0; n < 10; n += 1) {
          await pacer.acquire();
          times.push(performance.now());
        }
      }),
    );
    expect(times).toHaveLength(120);
    // 120 calls at 100/s: ~1.2 s, never more than 50 in any 500 ms window. The pacer admits calls by Redis's
    // clock; we timestamp them after the reply reaches us, so allow 10 ms of measurement jitter.
    expect(busiestWindow(times, 490)).toBeLessThanOrEqual(50);
    const span = Math.max(...times) - Math.min(...times);
    expect(span).toBeGreaterThanOrEqual(1150);
  });

  // The server counts arrivals, not admissions: a call held up on its way (a GC pause, a long event-loop turn
  // before its socket write) arrives late while the calls admitted after it arrive on time. Here each call
  // reaches "the server" 0-40 ms after its admission, at random. Admitted against the bare 500 ms window (or
  // with 2 %, 10 ms, of margin), calls 1 and 51 can arrive less than 490 ms apart; the pacer's arrival margin
  // (50 ms, pacer.ts ARRIVAL_JITTER_MIN_MS) keeps every window at the limit.
  it('the limit holds where the server counts: calls reaching it up to 40 ms late never put more than the limit in a window', async () => {
    const pacers = [connect(), connect(), connect()].map((r) => makePacer(r, `${key}4`, { max: 50, durationMs: 500 }));
    const arrivals: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const pacer = pacers[i % 3]!;
        for (let n = 0; n < 15; n += 1) {
          await pacer.acquire();
          await new Promise((r) => setTimeout(r, Math.random() * 40));
          arrivals.push(performance.now());
        }
      }),
    );
    expect(arrivals).toHaveLength(180);
    // 10 ms of measurement jitter, as above.
    expect(busiestWindow(arrivals, 490)).toBeLessThanOrEqual(50);
  });

  it('a pause pushes every caller back', async () => {
    const redis = connect();
    const pacer = makePacer(redis, `${key}2`, { max: 1000, durationMs: 1000 });
    await pacer.pause(400);
    const started = performance.now();
    await makePacer(connect(), `${key}2`, { max: 1000, durationMs: 1000 }).acquire();
    expect(performance.now() - started).toBeGreaterThanOrEqual(380);
  });

  it('a call held by the sliding log does not go inside a pause that another process began meanwhile', async () => {
    const redis = connect();
    const pacerKey = `${key}5`;
    // The log already holds the window's 5 calls, made just now: the next call is held for about a window.
    const [sec, usec] = await redis.time();
    const nowUs = Number(sec) * 1_000_000 + Number(usec);
    await redis.zadd(pacerLogKey(pacerKey), ...[1, 2, 3, 4, 5].flatMap((n) => [nowUs, `earlier-${n}`]));
    let held: () => void = () => undefined;
    const isHeld = new Promise<void>((resolve) => (held = resolve));
    const sleep = async (ms: number): Promise<void> => {
      if (ms > 100) held();
      await new Promise<void>((resolve) => setTimeout(resolve, ms));
    };
    const acquired = makePacer(redis, pacerKey, { max: 5, durationMs: 500, sleep }).acquire();
    await isHeld;
    // Another process's 429: written to Redis only, so this process knows of it only by asking.
    const pausedAt = performance.now();
    await pacerPause(connect(), pacerKey, 1_500_000);
    await acquired;
    expect(performance.now() - pausedAt).toBeGreaterThanOrEqual(1490);
  });

  it('adaptive: a rate cut rescales the slots reserved ahead, not a 429 pause (a pause is a time, not slots)', async () => {
    const redis = connect();
    const keys = { pacer: `${key}4`, rate: `{${prefix}}:rate4` };
    const call = { windowUs: 1_000_000, fallbackRate: 1, horizonUs: 10_000_000 };
    await redis.hset(keys.rate, 'rate', '100');
    // Ten slots at 100 per second: the next one is about 100 ms ahead.
    for (let i = 0; i < 10; i += 1) await pacerReserveRate(redis, keys, call);
    await pacerPause(redis, keys.pacer, 1_000_000);
    // The cut that comes with a 429: 100 → 25. The slot after the pause is at its end (plus at most the ~100 ms
    // reserved ahead, ×4 for the new rate), not 4 × the pause.
    await redis.hset(keys.rate, 'rate', '25');
    const after = await pacerReserveRate(redis, keys, call);
    expect(after.taken).toBe(true);
    expect(after.rate).toBe(25);
    expect(after.waitUs).toBeGreaterThan(900_000);
    expect(after.waitUs).toBeLessThan(1_500_000);
  });

  it('is a no-op with the limit off', async () => {
    const pacer = makePacer(connect(), `${key}3`, { max: 0, durationMs: 1000 });
    const started = performance.now();
    for (let i = 0; i < 100; i += 1) await pacer.acquire();
    expect(await connections[0]!.exists(`${key}3`)).toBe(0);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
