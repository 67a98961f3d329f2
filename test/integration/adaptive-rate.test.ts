/**
 * RATE_LIMIT_MAX=auto against the stand-in's hidden limit (a per-second token bucket it does not advertise):
 * the adaptive limit climbs to near the limit and backs off on 429s, stays under its ceiling, is one limit for
 * every worker process, remembers what it learned for the next batch and forgets it after
 * RATE_LIMIT_MEMORY_HOURS, and follows advertised RateLimit-* headers without probing. Assertions are on what
 * the stand-in saw (counts per chat, 429s, calls per second) and on the stored state, in wide bands.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import type { ReportSummary } from '../../src/report/report.js';
import { adaptiveSettingsOf, encodeState, makeAdaptiveLimiter, rateFingerprint } from '../../src/execution/adaptive-limiter.js';
import { initialState } from '../../src/execution/adaptive-rate.js';
import { previewSchedule, scheduleStoreOf } from '../../src/app/schedules.js';
import type { MockApiOptions } from '../../src/devtools/mock-api.js';
import type { RunnerOptions } from '../../src/config/config.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { eventually } from '../helpers/eventually.js';
import { killAllChildren, spawnWorker } from '../helpers/processes.js';
import { TEST_ACTOR } from '../helpers/actor.js';

const WABA = '919000000000';

let env: TestEnv | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  env = undefined;
});

async function setUp(api: Partial<MockApiOptions>, config: RunnerOptions = {}): Promise<TestEnv> {
  env = await makeTestEnv({
    api,
    config: { rateLimitMax: 'auto', rateLimitCeiling: 40, rateLimitDurationMs: 1000, workerConcurrency: 8, maxAttempts: 3, ...config },
  });
  return env;
}

async function ingest(e: TestEnv, chats: number, from = 5000): Promise<string> {
  const numbers = phones(chats, from);
  const batch = await e.ingestCsv(e.csv(`chats-${from}.csv`, `phone,waba\n${numbers.map((n) => `${n},${WABA}`).join('\n')}\n`));
  return batch.id;
}

/** Every chat of the run got exactly one 201. */
function expectEachOnce(e: TestEnv, chats: number): void {
  const counts = Object.values(e.api.stats().unassigned);
  expect(counts).toHaveLength(chats);
  expect(counts.every((n) => n === 1)).toBe(true);
}

function limiterOf(e: TestEnv, memoryHours = e.config.rateLimitMemoryHours) {
  return makeAdaptiveLimiter(e.ctx.redis, {
    keys: e.ctx.keys,
    baseUrl: e.config.baseUrl,
    apiKey: e.config.apiKey ?? '',
    settings: adaptiveSettingsOf({ ...e.config, rateLimitMemoryHours: memoryHours }),
  });
}

/** The stored state once every answer is reported (a process reports every 100 ms, so the last ones may be on their way). */
async function settledView(e: TestEnv, ok: number) {
  const limiter = limiterOf(e);
  return eventually(
    async () => {
      const view = await limiter.view();
      return view.ok + view.rateLimited >= ok + e.api.stats().rateLimited && view;
    },
    { timeoutMs: 10_000, message: () => `the adaptive state to count ${ok} successes` },
  );
}

/** Moves the stored state's clock back by `ms`, as if its last call were that long ago. */
async function ageState(e: TestEnv, ms: number): Promise<void> {
  const key = e.ctx.keys.rate(rateFingerprint(e.config.baseUrl, e.config.apiKey ?? ''));
  const [usedAt, restartAt] = (await e.ctx.redis.hmget(key, 'usedAt', 'restartAt')).map(Number);
  await e.ctx.redis.hset(key, 'usedAt', String(usedAt! - ms), 'restartAt', String(restartAt! - ms));
}

describe('RATE_LIMIT_MAX=auto finds a hidden limit', () => {
  it('climbs to near a hidden 20/s, backs off on 429s, and unassigns every chat exactly once', async () => {
    const e = await setUp({ hiddenLimit: 20 });
    const batchId = await ingest(e, 240);
    e.worker();
    const done = await e.waitFor(batchId, ['finished'], 90_000);
    expect(done.done).toBe(240);
    expectEachOnce(e, 240);
    const stats = e.api.stats();
    expect(stats.rateLimited).toBeGreaterThan(0); // it probed past the limit …
    expect(stats.rateLimited / stats.requests).toBeLessThanOrEqual(0.1); // … at a small cost
    const view = await settledView(e, 240);
    // Backed off from the slow start's overshoot, to near the limit.
    expect(view.currentPerSecond).toBeGreaterThanOrEqual(8);
    expect(view.currentPerSecond).toBeLessThanOrEqual(30);
    expect(view.rateLimited).toBe(stats.rateLimited);
    expect(view.ok).toBe(240);
    // The stand-in's busiest seconds after the climb are near its limit (a refilled bucket lets a burst through).
    const busiest = [...e.api.perSecond().ok].sort((a, b) => b - a).slice(0, 3);
    expect(Math.min(...busiest)).toBeGreaterThanOrEqual(12);
    // summary.json records the rate reached and the 429s.
    const summary = JSON.parse(readFileSync(join(e.config.reportsDir, batchId, 'summary.json'), 'utf8')) as ReportSummary;
    expect(summary.rateLimited).toBe(stats.rateLimited);
    expect(summary.apiRate?.mode).toBe('auto');
    expect(summary.apiRate?.reachedPerSecond).toBe(view.currentPerSecond);
    expect(summary.apiRate?.learnedPerSecond).toBeGreaterThanOrEqual(8);
  }, 120_000);

  it('never exceeds RATE_LIMIT_CEILING: a ceiling under the hidden limit means no 429 at all', async () => {
    const e = await setUp({ hiddenLimit: 40 }, { rateLimitCeiling: 12 });
    const batchId = await ingest(e, 100);
    e.worker();
    await e.waitFor(batchId, ['finished'], 90_000);
    expectEachOnce(e, 100);
    const stats = e.api.stats();
    expect(stats.rateLimited).toBe(0);
    expect(stats.maxPerSecond).toBeLessThanOrEqual(12);
    expect((await limiterOf(e).view()).currentPerSecond).toBe(12);
  }, 120_000);

  it('uses advertised RateLimit-* headers instead of probing: no 429', async () => {
    const e = await setUp({ hiddenLimit: 25, advertiseLimit: true });
    const batchId = await ingest(e, 200);
    e.worker();
    await e.waitFor(batchId, ['finished'], 90_000);
    expectEachOnce(e, 200);
    expect(e.api.stats().rateLimited).toBe(0);
    const view = await limiterOf(e).view();
    expect(view.phase).toBe('headers');
    expect(view.currentPerSecond).toBe(25);
  }, 120_000);
});

describe('RATE_LIMIT_MAX=auto is one limit for all worker processes', () => {
  it('two worker processes share one state: its counts are every answer of both, and few of their calls meet a 429', async () => {
    const e = await setUp({ hiddenLimit: 20 }, { workerConcurrency: 4 });
    const extra = { RATE_LIMIT_MAX: 'auto', RATE_LIMIT_CEILING: '40', WORKER_CONCURRENCY: '4' };
    await Promise.all([spawnWorker(e, extra), spawnWorker(e, extra)]);
    const batchId = await ingest(e, 300);
    await e.waitFor(batchId, ['finished'], 90_000);
    expectEachOnce(e, 300);
    const stats = e.api.stats();
    const view = await settledView(e, 300);
    // One state stepped by both: its counts are every answer the stand-in gave, none lost to a race.
    expect(view.ok).toBe(300);
    expect(view.rateLimited).toBe(stats.rateLimited);
    // Two limits of their own would each climb to the limit: twice the limit, and 429s on a large share of calls.
    expect(stats.rateLimited / stats.requests).toBeLessThanOrEqual(0.1);
  }, 120_000);
});

describe('RATE_LIMIT_MAX=auto remembers what it learned', () => {
  it('the next batch starts near the learned rate, not at 1/s; after RATE_LIMIT_MEMORY_HOURS without use it decays to the start', async () => {
    const e = await setUp({ hiddenLimit: 20 });
    const first = await ingest(e, 250);
    const worker = e.worker();
    await e.waitFor(first, ['finished'], 90_000);
    await worker.close();
    const learned = (await limiterOf(e).view()).learnedPerSecond;
    expect(learned).toBeGreaterThanOrEqual(8);
    expect(learned).toBeLessThanOrEqual(30);

    // An hour later (well inside 24 h): a new run starts from what was learned.
    await ageState(e, 3600_000);
    const resumed = limiterOf(e);
    await resumed.ready();
    const restarted = await resumed.view();
    expect(restarted.currentPerSecond).toBe(learned);
    e.api.reset();
    const second = await ingest(e, 100, 9000);
    const secondWorker = e.worker();
    await e.waitFor(second, ['finished'], 90_000);
    // Stopped, so that nothing uses (and so refreshes) the learned rate while it is aged below.
    await secondWorker.close();
    expectEachOnce(e, 100);
    // A slow start would have let 1 + 2 + 4 calls through in the first three seconds.
    const firstSeconds = e.api
      .perSecond()
      .ok.slice(0, 3)
      .reduce((a, b) => a + b, 0);
    expect(firstSeconds).toBeGreaterThan(7);

    // Long unused with a short memory: back to RATE_LIMIT_START.
    await ageState(e, 100 * 3600_000);
    const forgetful = limiterOf(e, 1);
    await forgetful.ready();
    const decayed = await forgetful.view();
    expect(decayed.currentPerSecond).toBe(1);
    expect(decayed.learnedPerSecond).toBe(1);
  }, 150_000);
});

describe('RATE_LIMIT_MAX=auto paces a schedule run started by hand', () => {
  it('a preview lists GET /chats pages at the learned rate, not at the ceiling, and its answers are counted', async () => {
    const e = await setUp({ seedChats: 600 });
    // What the workers learned earlier: 2 calls/s, held (no probing during the test).
    const now = Date.now();
    const key = e.ctx.keys.rate(rateFingerprint(e.config.baseUrl, e.config.apiKey ?? ''));
    const learned = { ...initialState(adaptiveSettingsOf(e.config), now), rate: 2, learned: 2, phase: 'hold' as const, holdLeft: 1000, usedAt: now };
    await e.ctx.redis.hset(key, { ...encodeState(learned), version: '1' });

    const started = Date.now();
    const preview = await previewSchedule(
      e.ctx,
      scheduleStoreOf(e.ctx),
      'tidy',
      { cron: '0 3 * * *', tz: 'UTC', chatStatus: 'open' },
      { cwd: e.dir },
      TEST_ACTOR,
    );
    const elapsed = Date.now() - started;
    const pages = e.api.stats().listRequests;
    expect(preview.batches.length).toBeGreaterThan(0);
    expect(pages).toBeGreaterThanOrEqual(3);
    // At 2/s the pages are more than 0.4 s apart; at the ceiling (40/s) they would be 25 ms apart.
    expect(elapsed).toBeGreaterThanOrEqual((pages - 1) * 400);
    const view = await settledView(e, pages);
    expect(view.ok).toBeGreaterThanOrEqual(pages);
    expect(view.currentPerSecond).toBe(2);
  });
});
