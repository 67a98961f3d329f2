/**
 * A reports folder that cannot be written never holds a batch: the batch ends `finished` with a note saying
 * the report was not written and why, `run` exits 2 naming the path (an environment error, not an internal
 * one), `report <id>` exits 2 the same way while the folder is bad, and writes the report once it is good.
 * The bad folder is a path under a regular file (ENOTDIR), which refuses even root.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';

import { Worker } from 'bullmq';

import { Status } from '../../src/domain/lifecycle.js';
import { finalizeJobId, JOB_FINALIZE } from '../../src/store/queue.js';
import { QUEUE_NAME } from '../../src/store/keys.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';

const WABA = '919000000000';
let env: TestEnv;

beforeAll(async () => {
  env = await makeTestEnv();
});
afterEach(async () => killAllChildren());
afterAll(async () => env.cleanup());

describe('an unwritable REPORTS_DIR', () => {
  it('finishes the batch, exits 2 naming the path, and `report` writes it later', async () => {
    const blocker = join(env.dir, 'not-a-folder');
    writeFileSync(blocker, 'a file where the reports folder should be');
    const badDir = join(blocker, 'reports');
    const csv = env.csv('chats.csv', ['customerPhoneNumber,wabaNumber', ...phones(20).map((p) => `${p},${WABA}`)].join('\n'));

    const run = spawnCli(env, ['run', csv, '--quiet'], { REPORTS_DIR: badDir });
    const exit = await run.exited;
    expect(exit.code).toBe(2);
    expect(run.output()).toContain(badDir);
    expect(run.output()).not.toContain('internal error');

    const [batch] = await env.ctx.batches.list(1);
    expect(batch?.status).toBe(Status.finished);
    expect(batch?.counts.succeeded).toBe(20);
    expect(batch?.notes.some((n) => n.startsWith('report not written when the batch finished: ') && n.includes('ENOTDIR'))).toBe(true);

    const stillBad = spawnCli(env, ['report', batch?.id ?? ''], { REPORTS_DIR: badDir });
    expect((await stillBad.exited).code).toBe(2);
    expect(stillBad.output()).toContain(badDir);

    const goodDir = join(env.dir, 'reports-later');
    const later = spawnCli(env, ['report', batch?.id ?? ''], { REPORTS_DIR: goodDir });
    expect((await later.exited).code).toBe(0);
    expect(existsSync(join(goodDir, batch?.id ?? '', 'summary.json'))).toBe(true);
    // The report written later tells what happened at the finish, not that it (this very file) does not exist.
    const summary = readFileSync(join(goodDir, batch?.id ?? '', 'summary.md'), 'utf8');
    expect(summary).toContain('report not written when the batch finished: ');
    expect(summary).not.toMatch(/report not written: /);
  });
});

describe('a finalize job that failed for good', () => {
  it('is replaced by the workers\u2019 sweep (its fixed job id no longer blocks the new one), and the batch finishes', async () => {
    const csv = env.csv('stuck.csv', ['customerPhoneNumber,wabaNumber', ...phones(3, 50_000).map((p) => `${p},${WABA}`)].join('\n'));
    const batch = await env.ingestCsv(csv);
    // A batch whose finalize job ran out of attempts (as a long outage could leave it): its chats are taken off
    // the queue, it moves to finalizing, and its finalize job is taken by hand and failed.
    await env.ctx.queue.drain(true);
    expect(await env.ctx.batches.apply(batch.id, 'complete')).toBe(Status.running);
    await env.ctx.queue.add(JOB_FINALIZE, { b: batch.id }, { jobId: finalizeJobId(batch.id), attempts: 1, removeOnFail: 100 });
    // BullMQ does not close a connection it was given: this one is quit below, or it would keep Jest running.
    const connection = env.ctx.redis.duplicate();
    const taker = new Worker(QUEUE_NAME, null, { connection, prefix: env.ctx.keys.bullPrefix });
    try {
      const job = await taker.getNextJob('by-hand', { block: false });
      expect(job?.id).toBe(finalizeJobId(batch.id));
      await job?.moveToFailed(new Error('finalize gave up'), 'by-hand');
      expect(await env.ctx.queue.getJobState(finalizeJobId(batch.id))).toBe('failed');
    } finally {
      await taker.close();
      await connection.quit();
    }

    env.worker();
    const done = await env.waitFor(batch.id, [Status.finished, Status.cancelled], 20_000);
    expect(done.status).toBe(Status.finished);
  });
});
