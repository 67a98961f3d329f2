/**
 * Redis refusing writes mid-batch (maxmemory reached with noeviction: "OOM command not allowed") must cost
 * time, never chats: no attempt of a chat is spent on it, a result the API already gave is written once Redis
 * takes writes again, the batch finishes by itself with exact counts, every chat is called once, and the
 * attempts the report counts are the calls the server received. The CLI says what it is waiting for.
 *
 * And the reconciler: a running batch whose chats lost their jobs (the state such an outage could leave) gets
 * them back and finishes, each lost chat called once. And the console's live stream says what the CLI says.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { startPrivateRedis, type PrivateRedis } from '../../src/devtools/redis-server.js';
import { Status } from '../../src/domain/lifecycle.js';
import { jobIdFor } from '../../src/store/queue.js';
import { expectExactAccounting, simpleCsv, until, waitForDone } from '../helpers/accounting.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli, spawnWorker } from '../helpers/processes.js';
import { sseEvents, startTestConsole, type TestConsole } from '../helpers/console.js';

const WABA = '919000000000';
/** As long as the outage that lost chats before workers waited outages out. */
const OUTAGE_MS = 20_000;

let env: TestEnv | undefined;
let redis: PrivateRedis | undefined;
let admin: Redis | undefined;
let con: TestConsole | undefined;
afterEach(async () => {
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  await con?.close();
  con = undefined;
  await killAllChildren();
  await admin?.config('SET', 'maxmemory', '0').catch(() => undefined);
  admin?.disconnect();
  await env?.cleanup();
  await redis?.close();
  [env, redis, admin] = [undefined, undefined, undefined];
});

describe('Redis refuses writes for 20 s mid-batch', () => {
  it('loses, repeats and spends nothing: exact counts, one call per chat, attempts = calls', async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    env = await makeTestEnv({ api: { latencyMs: 20 }, config: { redisUrl: redis.url, workerConcurrency: 4, requestTimeoutMs: 1000 } });
    const chats = 2000;
    const { text, chatKeys } = simpleCsv(phones(chats), WABA);
    const run = spawnCli(env, ['run', env.csv('chats.csv', text)]);
    await spawnWorker(env);
    let batchId = '';
    await until(async () => {
      batchId = (await env?.ctx.batches.list(1))?.[0]?.id ?? '';
      return batchId !== '';
    }, 'the batch to be created');
    const before = await waitForDone(env, batchId, chats / 4, 60_000);
    expect(before.status).toBe(Status.running);

    const outageStart = Date.now();
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    await expect(admin.set('probe', '1')).rejects.toThrow(/OOM/);
    await run.waitForOutput('Redis refuses writes', 15_000);
    // The outage itself: a duration to hold, not an event to wait for.
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - outageStart))));
    const during = await env.ctx.batches.require(batchId);
    await admin.config('SET', 'maxmemory', '0');

    expect(await run.exited).toMatchObject({ code: 0 });
    expect(run.output()).toContain('Redis accepts writes again');
    const { extra201s } = await expectExactAccounting(env, batchId, chatKeys);
    expect(extra201s).toBe(0);
    const batch = await env.ctx.batches.require(batchId);
    expect(batch.counts.failed).toBe(0);
    expect(batch.attempts).toBe(env.api.stats().requests);
    expect(during.done).toBeLessThan(chats); // the outage really caught the batch mid-way
  }, 240_000);
});

describe('the reconciler', () => {
  it('gives chats that have neither a job nor a result their job back, and the batch finishes', async () => {
    env = await makeTestEnv({ config: { workerConcurrency: 4 } });
    const { text, chatKeys } = simpleCsv(phones(60), WABA);
    const batch = await env.ingestCsv(env.csv('lost.csv', text));
    const lost = chatKeys.slice(10, 25);
    for (const chatKey of lost) await env.ctx.queue.remove(jobIdFor(batch.id, chatKey));
    for (const chatKey of lost) expect(await env.ctx.queue.getJobState(jobIdFor(batch.id, chatKey))).toBe('unknown');

    env.worker();
    const done = await env.waitFor(batch.id, [Status.finished], 60_000);
    expect(done.counts.succeeded).toBe(chatKeys.length);
    const { extra201s } = await expectExactAccounting(env, batch.id, chatKeys);
    expect(extra201s).toBe(0);
  }, 90_000);
});

describe('the console while Redis refuses writes', () => {
  it('its live progress stream says "Redis refuses writes", and says so again when writes are taken', async () => {
    redis = await startPrivateRedis();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    env = await makeTestEnv({ config: { redisUrl: redis.url } });
    con = await startTestConsole(env, { worker: false });
    const upload = await con.upload(simpleCsv(phones(5, 90_000), WABA).text, 'outage.csv');
    expect(upload.status).toBe(201);
    const controller = new AbortController();
    const response = await con.request(`/api/batches/${String(upload.body.id)}/events`, { signal: controller.signal });
    expect(response.status).toBe(200);

    const problems: (string | null)[] = [];
    for await (const { event, data } of sseEvents(response)) {
      if (event !== 'infra') continue;
      const problem = (data as { problem: string | null }).problem;
      problems.push(problem);
      if (problems.length === 1) {
        expect(problem).toBeNull();
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        await admin.config('SET', 'maxmemory', '1');
      } else if (problem !== null) {
        expect(problem).toMatch(/^Redis refuses writes: OOM/);
        await admin.config('SET', 'maxmemory', '0');
      } else break;
    }
    controller.abort();
    expect(problems).toEqual([null, expect.stringMatching(/^Redis refuses writes: OOM/), null]);
  }, 60_000);
});
