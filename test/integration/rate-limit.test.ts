/**
 * A 429 pauses ALL workers, honours Retry-After (seconds and HTTP date), backs
 * off on its own without one, and never costs a chat an attempt. Three in-process workers (three BullMQ Workers,
 * each with its own concurrency) run against the stand-in server; the HTTP diagnostics channels record when each
 * request reached the server and when each 429 came back, so "nobody called before Retry-After" is checked on
 * timestamps, not guessed from totals.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import type { MockApiOptions, RetryAfterMode } from '../../src/devtools/mock-api.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { type HttpRecorder, recordHttp } from '../helpers/http-recorder.js';

const WABA = '919000000000';
const WORKERS = 3;
const CONCURRENCY = 4;
/**
 * Calls already on their way when a 429 comes back still arrive after it; they are bounded by WORKERS ×
 * CONCURRENCY in number and reach the server within this many ms of running event loop (a stall of the loop
 * delays both the arrival and every worker's hearing of the 429, so it is not counted: http-recorder.ts).
 * Anything later and before Retry-After is a worker that did not pause.
 */
const IN_FLIGHT_SLACK_MS = 250;
/** The shortest pause the client takes on its own after a 429 without Retry-After (rateLimitBackoffMs: 1 s − 25 %). */
const OWN_BACKOFF_MIN_MS = 750;

let env: TestEnv | undefined;
let recorder: HttpRecorder | undefined;
afterEach(async () => {
  recorder?.stop();
  recorder = undefined;
  await env?.cleanup();
  env = undefined;
});

async function runBatch(chats: number, api: Partial<MockApiOptions>, config: { rateLimitMax: number; maxAttempts: number }, fallbackPauseMs = 0) {
  env = await makeTestEnv({ api, config: { ...config, rateLimitDurationMs: 1000, workerConcurrency: CONCURRENCY } });
  recorder = recordHttp(env.api.port, fallbackPauseMs);
  const numbers = phones(chats, 5000);
  const batch = await env.ingestCsv(env.csv('chats.csv', `phone,waba\n${numbers.map((n) => `${n},${WABA}`).join('\n')}\n`));
  for (let i = 0; i < WORKERS; i += 1) env.worker();
  const done = await env.waitFor(batch.id, ['finished'], 40_000);
  return { done, stats: env.api.stats(), recorder };
}

describe('429: every worker pauses, Retry-After is honoured, no attempt is spent', () => {
  it('a 429 storm with MAX_ATTEMPTS=1 and pacing off: every chat still succeeds once; nobody calls inside the 1 s pauses', async () => {
    const storm = 30;
    const { done, stats, recorder: rec } = await runBatch(48, { faults: { storm429: storm } }, { rateLimitMax: 0, maxAttempts: 1 });

    expect(done.counts).toMatchObject({ valid: 48, succeeded: 48, failed: 0 });
    expect(stats.byStatus).toEqual({ 201: 48, 429: storm });
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    // 429s are counted, but not as attempts: each chat's one attempt is its 201.
    expect(done.rateLimited).toBe(storm);
    expect(done.attempts).toBe(48);
    expect(rec.limited).toHaveLength(storm);
    expect(rec.violations(IN_FLIGHT_SLACK_MS)).toEqual([]);
    expect(rec.maxArrivalsInsidePause()).toBeLessThanOrEqual(WORKERS * CONCURRENCY);
  });

  // The server allows 15 calls per 2 s; the client believes 60/s. After the first 429 of a window everyone waits
  // for the window to reset, so each window costs a handful of 429s (calls already sent), not a burst per worker.
  // Without Retry-After the client's own first backoff (~1 s) is shorter than the server's 2 s window, so it probes
  // up to ~3 times per window: a looser bound, still far below the dozens per window that uncoordinated workers cause.
  it.each<[RetryAfterMode, number, number]>([
    ['seconds', 0, 3],
    ['http-date', 0, 3],
    ['none', OWN_BACKOFF_MIN_MS, 6],
  ])('server rate limit, Retry-After %s: 60 chats succeed once each, the 429s stay few, nobody calls early', async (mode, fallbackPauseMs, max429PerWindow) => {
    const chats = 60;
    const server = { max: 15, windowMs: 2000 };
    const {
      done,
      stats,
      recorder: rec,
    } = await runBatch(chats, { rateLimit: server, retryAfter: mode }, { rateLimitMax: 60, maxAttempts: 2 }, fallbackPauseMs);

    expect(done.counts).toMatchObject({ valid: chats, succeeded: chats, failed: 0 });
    expect(stats.byStatus['201']).toBe(chats);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(done.attempts).toBe(chats);
    expect(done.rateLimited).toBe(stats.rateLimited);
    expect(rec.limited).toHaveLength(stats.rateLimited);
    if (mode !== 'none') expect(rec.limited.every((l) => l.retryAfter !== undefined)).toBe(true);
    // Honoured: no request reached the server after a 429 came back and before its Retry-After (or own backoff) ran out.
    expect(rec.violations(IN_FLIGHT_SLACK_MS)).toEqual([]);
    expect(rec.maxArrivalsInsidePause()).toBeLessThanOrEqual(WORKERS * CONCURRENCY);
    // Bounded: 4 windows are needed (60 / 15). Without a global pause the other workers would keep calling
    // through every pause (dozens of 429s per window); with it, each window ends in a few in-flight 429s.
    const windows = Math.ceil(chats / server.max);
    expect(stats.rateLimited).toBeGreaterThanOrEqual(1);
    expect(stats.rateLimited).toBeLessThanOrEqual(windows * max429PerWindow);
    process.stdout.write(
      `429 test (${mode}): ${stats.rateLimited} × 429 over ${windows} windows, max ${rec.maxArrivalsInsidePause()} arrivals inside a pause, longest loop stall ${Math.round(Math.max(0, ...rec.stalls.map(([a, b]) => b - a)))} ms\n`,
    );
  });
});
