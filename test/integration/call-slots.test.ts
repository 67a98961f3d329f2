/**
 * WORKER_CONCURRENCY is the calls a worker process has in flight: the worker holds more jobs than that
 * (call-slots.ts `jobsHeldFor`), so that a job's bookkeeping after its call never leaves a slot idle, and its
 * call slots keep the calls at the server at the configured number, never above it.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import { jobsHeldFor } from '../../src/execution/call-slots.js';
import { simpleCsv } from '../helpers/accounting.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';

const WABA = '919000000000';
const CONCURRENCY = 3;

let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

describe('call slots', () => {
  it('a worker holds more jobs than WORKER_CONCURRENCY, and the server sees exactly WORKER_CONCURRENCY calls at most', async () => {
    env = await makeTestEnv({ api: { latencyMs: 40 }, config: { workerConcurrency: CONCURRENCY } });
    const { text } = simpleCsv(phones(60), WABA);
    const batch = await env.ingestCsv(env.csv('chats.csv', text));
    let mostActive = 0;
    const running = env.worker();
    running.worker.on('active', () => {
      void env?.ctx.queue.getActiveCount().then((n) => (mostActive = Math.max(mostActive, n)));
    });
    const done = await env.waitFor(batch.id, ['finished'], 30_000);
    expect(done.counts).toMatchObject({ valid: 60, succeeded: 60 });
    expect(env.api.stats().maxInFlight).toBe(CONCURRENCY);
    expect(jobsHeldFor(CONCURRENCY)).toBeGreaterThan(CONCURRENCY);
    expect(mostActive).toBeGreaterThan(CONCURRENCY);
    expect(mostActive).toBeLessThanOrEqual(jobsHeldFor(CONCURRENCY));
  }, 60_000);
});
