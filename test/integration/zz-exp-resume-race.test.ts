import { afterEach, expect, it } from '@jest/globals';
import { resumeBatch } from '../../src/batch-control.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
let env: TestEnv | undefined;
afterEach(async () => { await env?.cleanup(); env = undefined; });
it.each(Array.from({ length: 6 }, (_, i) => i))('resume right after stop %i', async () => {
  env = await makeTestEnv({ api: { faults: { revokeKeyAfter: 100 }, latencyMs: 5 }, config: { workerConcurrency: 4, rateLimitMax: 0 } });
  const numbers = phones(2000, 20_000);
  const batch = await env.ingestCsv(env.csv('c.csv', `phone,waba\n${numbers.map((p) => `${p},919000000000`).join('\n')}\n`));
  for (let i = 0; i < 3; i += 1) env.worker();
  await env.waitFor(batch.id, ['stopped'], 30_000);
  env.api.setFaults({});
  let resumes = 0;
  let done;
  for (;;) {
    resumes++;
    await resumeBatch(env.ctx, batch.id);
    try { done = await env.waitFor(batch.id, ['finished', 'stopped'], 15_000); } catch (e) {
      const b = await env.ctx.batches.require(batch.id);
      const parked = await env.ctx.redis.hlen(env.ctx.keys.batch(batch.id).parked);
      const counts = await env.ctx.queue.getJobCounts();
      throw new Error(`stuck: ${b.status} done ${b.done}/${b.counts.valid} parked ${parked} queue ${JSON.stringify(counts)}`);
    }
    if (done.status === 'finished' || resumes > 3) break;
  }
  const stats = env.api.stats();
  process.stdout.write(`resumes ${resumes}, 401s ${stats.byStatus['401']}\n`);
  expect({ status: done.status, succeeded: done.counts.succeeded, once: Object.values(stats.unassigned).every((x) => x === 1) }).toEqual({ status: 'finished', succeeded: 2000, once: true });
});
