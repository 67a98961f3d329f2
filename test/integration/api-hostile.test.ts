/**
 * An API that does not behave: it redirects, answers with an HTML page, answers 429 for ever, or a worker dies
 * with calls in flight. Real HTTP to the stand-in server (src/devtools/mock-api.ts), real Redis, real BullMQ.
 *
 * - A redirect is never followed (the other origin receives nothing) and an HTML page is never a success: the
 *   batch stops, resumable, with a reason naming DOUBLETICK_BASE_URL, and no chat is counted unassigned.
 * - A batch answered nothing but 429 for MAX_RATE_LIMIT_WAIT_MINUTES stops, resumable, with a reason saying so;
 *   while it waits, `status` says until when. No chat is failed for it, and resume finishes it.
 * - Attempts are the calls the server received, even when a worker is killed with calls in flight.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { resumeBatch } from '../../src/ops/batch-control.js';
import { type MockApi, startMockApi } from '../../src/devtools/mock-api.js';
import type { BatchRecord } from '../../src/store/batch-store.js';
import { eventually } from '../helpers/eventually.js';
import { makeTestEnv, phones, TEST_KEY, type TestEnv, waitForQuiet } from '../helpers/harness.js';
import { killAllChildren, spawnCli, spawnWorker } from '../helpers/processes.js';
import { TEST_ACTOR } from '../helpers/actor.js';
import { startTestConsole, type TestConsole } from '../helpers/console.js';

const WABA = '919000000000';

let env: TestEnv | undefined;
let other: MockApi | undefined;
let con: TestConsole | undefined;
afterEach(async () => {
  await con?.close();
  con = undefined;
  await killAllChildren();
  await env?.cleanup();
  await other?.close();
  [env, other] = [undefined, undefined];
});

async function ingest(e: TestEnv, n: number, start = 30_000): Promise<{ batch: BatchRecord; numbers: string[] }> {
  const numbers = phones(n, start);
  const batch = await e.ingestCsv(e.csv('chats.csv', `phone,waba\n${numbers.map((p) => `${p},${WABA}`).join('\n')}\n`));
  return { batch, numbers };
}

/** Stopped, none succeeded or failed, no result, every chat parked for resume. */
async function expectStoppedUntouched(e: TestEnv, batchId: string, chats: number): Promise<BatchRecord> {
  await waitForQuiet(e);
  const batch = await e.ctx.batches.require(batchId);
  expect(batch.status).toBe('stopped');
  expect(batch.counts).toMatchObject({ succeeded: 0, failed: 0, cancelled: 0 });
  expect(batch.done).toBe(0);
  expect(await e.ctx.redis.hlen(e.ctx.keys.batch(batchId).results)).toBe(0);
  expect(await e.ctx.redis.hlen(e.ctx.keys.batch(batchId).parked)).toBe(chats);
  return batch;
}

/** Resumes the batch and waits for it to finish: every chat unassigned exactly once by the (now sane) stand-in. */
async function resumeToTheEnd(e: TestEnv, batchId: string, chats: number): Promise<BatchRecord> {
  expect(await resumeBatch(e.ctx, batchId, TEST_ACTOR)).toBe(chats);
  const done = await e.waitFor(batchId, ['finished'], 30_000);
  const stats = e.api.stats();
  expect(done.counts).toMatchObject({ valid: chats, succeeded: chats, failed: 0, cancelled: 0 });
  expect(Object.keys(stats.unassigned)).toHaveLength(chats);
  expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
  return done;
}

describe('not the API answering: the batch stops, nothing is sent elsewhere or counted unassigned', () => {
  it('a 302 to another origin: the other origin receives nothing; the batch stops naming DOUBLETICK_BASE_URL; resume finishes it', async () => {
    const chats = 40;
    other = await startMockApi({ apiKey: TEST_KEY });
    env = await makeTestEnv({ api: { misroute: { kind: 'redirect', location: other.url } }, config: { workerConcurrency: 4 } });
    const { batch } = await ingest(env, chats);
    env.worker();
    env.worker();
    await env.waitFor(batch.id, ['stopped', 'finished'], 20_000);
    const stopped = await expectStoppedUntouched(env, batch.id, chats);

    // Not one phone number went to the other origin, and nothing it could have answered was taken for a success.
    expect(other.stats()).toMatchObject({ requests: 0, listRequests: 0, unassigned: {} });
    expect(stopped.reason).toBe(
      `the API answered 302 (a redirect to ${other.url}), not an answer of its own — check DOUBLETICK_BASE_URL, then \`bulk-unassign resume ${batch.id}\``,
    );
    // Stopped within a few calls: the calls in flight when the first 302 came back, at most.
    const atStop = env.api.stats();
    expect(atStop.byStatus).toEqual({ 302: atStop.requests });
    expect(atStop.requests).toBeLessThanOrEqual(2 * 4 + 3);
    expect(stopped.attempts).toBe(0);

    env.api.setMisroute(null);
    const done = await resumeToTheEnd(env, batch.id, chats);
    // Every call the server saw is an attempt, the 302s included.
    expect(done.attempts).toBe(env.api.stats().requests);
    expect(other.stats().requests).toBe(0);
  });

  it('a 200 HTML page (captive portal, proxy): no chat counted unassigned; the batch stops naming DOUBLETICK_BASE_URL', async () => {
    const chats = 40;
    env = await makeTestEnv({ api: { misroute: { kind: 'html' } }, config: { workerConcurrency: 4 } });
    const { batch } = await ingest(env, chats);
    env.worker();
    await env.waitFor(batch.id, ['stopped', 'finished'], 20_000);
    const stopped = await expectStoppedUntouched(env, batch.id, chats);
    expect(stopped.reason).toBe(
      `the API answered 200 with an HTML page, not JSON (a proxy, a captive portal or a wrong address) — check DOUBLETICK_BASE_URL, then \`bulk-unassign resume ${batch.id}\``,
    );
    const atStop = env.api.stats();
    expect(atStop.byStatus).toEqual({ 200: atStop.requests });
    expect(atStop.requests).toBeLessThanOrEqual(4 + 3);

    env.api.setMisroute(null);
    await resumeToTheEnd(env, batch.id, chats);
  });
});

describe('429 for ever: the batch stops after MAX_RATE_LIMIT_WAIT_MINUTES, and says until when it waits meanwhile', () => {
  it('Retry-After 1 for ever, MAX_RATE_LIMIT_WAIT_MINUTES 0.05: stopped with the reason after ≥ 3 s, no chat failed; resume finishes once the API answers 201', async () => {
    const chats = 20;
    env = await makeTestEnv({
      api: { faults: { storm429: 1_000_000, retryAfterSeconds: 1 } },
      config: { maxRateLimitWaitMinutes: 0.05, workerConcurrency: 4 },
    });
    const { batch } = await ingest(env, chats);
    const started = Date.now();
    env.worker();
    const stopped = await env.waitFor(batch.id, ['stopped', 'finished'], 30_000);
    const waitedMs = Date.now() - started;
    expect(stopped.reason).toBe(
      `the API answered 429 for 0.05 minutes (MAX_RATE_LIMIT_WAIT_MINUTES): resume when the limit is lifted, \`bulk-unassign resume ${batch.id}\``,
    );
    // The first 429 started the run: not before 3 s, and not long after (a pause never outlasts the limit).
    expect(waitedMs).toBeGreaterThanOrEqual(3000);
    expect(waitedMs).toBeLessThan(15_000);
    const atStop = await expectStoppedUntouched(env, batch.id, chats);
    expect(atStop.reasons).toEqual({});
    expect(atStop.rateLimited).toBe(env.api.stats().rateLimited);
    expect(atStop.rateLimitedSince).toBeUndefined();

    env.api.setFaults({});
    const done = await resumeToTheEnd(env, batch.id, chats);
    // A 429 is not an attempt: each chat's one attempt is its 201; the 429s are counted apart.
    expect(done.attempts).toBe(chats);
    expect(done.attempts + done.rateLimited).toBe(env.api.stats().requests);
  });

  it('Retry-After 999999: `status` and the console say "paused by the API until HH:MM:SS" while paused; the pause ends at MAX_RATE_LIMIT_WAIT_MINUTES and the batch stops', async () => {
    const chats = 10;
    env = await makeTestEnv({
      api: { faults: { storm429: 1_000_000, retryAfterSeconds: 999_999 } },
      // One call at a time, so that none is still out when the batch stops: a 429 answering it would rightly pause
      // every worker for its whole Retry-After (capped at 10 minutes), holding the stopped batch's last job past
      // this test's wait.
      config: { maxRateLimitWaitMinutes: 0.15, workerConcurrency: 1 },
    });
    // The console is up before the first call, so it is asked while the pause holds.
    con = await startTestConsole(env, { worker: false });
    const { batch } = await ingest(env, chats);
    const started = Date.now();
    env.worker();
    await eventually(async () => (await env!.ctx.batches.require(batch.id)).rateLimited > 0, { timeoutMs: 10_000, message: 'a first 429' });

    // The console's batch view (its page draws "Paused by the API until …" from it) says until when.
    const page = await con.request(`/api/batches/${batch.id}`);
    expect(page.status).toBe(200);
    const shown = (await page.json()) as { status: string; pausedByApiUntil: number | null };
    expect(shown.status).toBe('running');
    expect(shown.pausedByApiUntil).toBeGreaterThan(Date.now());
    expect(shown.pausedByApiUntil!).toBeLessThanOrEqual(started + 9000 + 2000);

    const status = spawnCli(env, ['status', batch.id]);
    expect(await status.exited).toMatchObject({ code: 0 });
    const until = /paused by the API until (\d{2}):(\d{2}):(\d{2})/.exec(status.output());
    expect(until).not.toBeNull();
    const json = spawnCli(env, ['status', batch.id, '--json']);
    expect(await json.exited).toMatchObject({ code: 0 });
    const view = JSON.parse(json.output()) as { status: string; pausedByApiUntil: number | null };
    expect(view.status).toBe('running');
    // Retry-After asked for 11 days (capped at 10 minutes); the pause ends where the run reaches 0.15 min (9 s).
    expect(view.pausedByApiUntil).toBeGreaterThan(Date.now());
    expect(view.pausedByApiUntil!).toBeLessThanOrEqual(started + 9000 + 2000);

    const stopped = await env.waitFor(batch.id, ['stopped', 'finished'], 20_000);
    expect(stopped.reason).toMatch(/^the API answered 429 for 0\.15 minutes \(MAX_RATE_LIMIT_WAIT_MINUTES\): resume when the limit is lifted/);
    expect(Date.now() - started).toBeLessThan(20_000);
    await expectStoppedUntouched(env, batch.id, chats);
    // Stopped: no longer "paused by the API".
    const after = spawnCli(env, ['status', batch.id]);
    expect(await after.exited).toMatchObject({ code: 0 });
    expect(after.output()).not.toContain('paused by the API');
    expect(after.output()).toContain('stopped: the API answered 429');
  });
});

describe('attempts are the calls the server received', () => {
  it("503s and a worker killed with calls in flight: batch attempts = the server's unassign requests, the lost calls included", async () => {
    const numbers = phones(60, 40_000);
    const held = numbers.slice(0, 3); // never answered the first time: in flight when the worker dies
    const flaky = Object.fromEntries(numbers.slice(10, 30).map((n, i) => [n, 1 + (i % 2)]));
    env = await makeTestEnv({
      api: { faults: { timeoutNumbers: Object.fromEntries(held.map((n) => [n, 1])), flaky } },
      // Short lock: the killed worker's jobs run again within seconds. The timeout outlasts the kill, and the
      // concurrency is the held calls' count: when the worker dies every slot of it has its call at the server.
      // (A slot between counting its call and sending it would leave that chat one attempt high: a count comes
      // first, so that no call is ever left uncounted.)
      config: { maxAttempts: 3, requestTimeoutMs: 2000, lockDurationMs: 3000, workerConcurrency: held.length },
    });
    const batch = await env.ingestCsv(env.csv('chats.csv', `phone,waba\n${numbers.map((p) => `${p},${WABA}`).join('\n')}\n`));
    const victim = await spawnWorker(env);
    await eventually(() => (env!.api.stats().byStatus.timeout ?? 0) === held.length, {
      timeoutMs: 20_000,
      intervalMs: 10,
      message: 'the held calls to arrive',
    });
    victim.kill('SIGKILL');
    expect(await victim.exited).toMatchObject({ signal: 'SIGKILL' });
    env.worker();
    const done = await env.waitFor(batch.id, ['finished'], 45_000);

    const stats = env.api.stats();
    expect(done.counts).toMatchObject({ valid: 60, failed: 0 });
    // The held calls were made twice (once by the dead worker), though BullMQ counted no attempt for the first.
    expect(stats.byStatus.timeout).toBe(held.length);
    for (const n of held) expect(await env.ctx.results.get(batch.id, `p:${n}@${WABA}`)).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(done.attempts).toBe(stats.requests);
    // Nothing is left counted once every chat has its result.
    expect(await env.ctx.redis.hlen(env.ctx.keys.batch(batch.id).calls)).toBe(0);
  }, 90_000);
});
