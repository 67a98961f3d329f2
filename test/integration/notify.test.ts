/**
 * NOTIFY_WEBHOOK_URL: when a scheduled batch finishes, its summary JSON is POSTed to the webhook, retried with
 * backoff (the receiver here fails the first call), and never ahead of or in the way of the batch itself.
 * Batches that are not scheduled (a CSV upload) send nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { JOB_NOTIFY } from '../../src/store/queue.js';
import { EVENT_HEADER } from '../../src/report/webhook-events.js';
import { makeTestEnv, phones, TEST_KEY, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';
import { waitFor, waitForScheduleJobsDrained } from '../helpers/schedule.js';

const WABA = '919000000000';

interface Call {
  readonly headers: IncomingHttpHeaders;
  readonly raw: string;
  readonly answered: number;
  /** The batch's status in Redis when the call arrived. */
  readonly batchStatus: string | undefined;
}

/** A webhook receiver that answers 500 to its first call and 200 afterwards. */
async function startReceiver(statusOf: (batchId: string) => Promise<string | undefined>): Promise<{ url: string; calls: Call[]; server: Server }> {
  const calls: Call[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const answered = calls.length === 0 ? 500 : 200;
      void statusOf((JSON.parse(raw) as { batchId: string }).batchId).then((batchStatus) => {
        calls.push({ headers: req.headers, raw, answered, batchStatus });
        res.writeHead(answered, { 'content-type': 'application/json' }).end('{}');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/bulk?token=s3cret`, calls, server };
}

let env: TestEnv | undefined;
let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  await new Promise((r) => (receiver ? receiver.server.close(r) : r(undefined)));
  env = undefined;
  receiver = undefined;
});

describe('NOTIFY_WEBHOOK_URL', () => {
  it("POSTs a finished scheduled batch's summary, retrying after a failed call; CSV batches send nothing", async () => {
    receiver = await startReceiver(async (id) => (await env?.ctx.batches.get(id))?.status);
    env = await makeTestEnv({ config: { notifyWebhookUrl: receiver.url } });
    env.worker();

    // A CSV batch (kind csv): finishes, and no notify job is made for it.
    const csvBatch = await env.ingestCsv(env.csv('plain.csv', `phone\n${phones(2, 90).join('\n')}\n`), { waba: WABA });
    await env.waitFor(csvBatch.id, ['finished']);
    await waitForScheduleJobsDrained(env.ctx);
    expect(receiver.calls).toEqual([]);

    // A scheduled batch (from an inbox schedule, run now).
    const inbox = join(env.dir, 'inbox');
    mkdirSync(inbox);
    writeFileSync(join(inbox, 'tonight.csv'), `phone\n${phones(3).join('\n')}\n`);
    expect((await spawnCli(env, ['schedule', 'set', '--cron', '0 2 * * *', '--tz', 'Asia/Kolkata', '--inbox', inbox, '--waba', WABA]).exited).code).toBe(0);
    const runNow = spawnCli(env, ['schedule', 'run-now', '--json']);
    expect((await runNow.exited).code).toBe(0);
    const batchId = JSON.parse(runNow.output()).run.batchIds[0] as string;
    const calls = await waitFor(async () => receiver!.calls.length >= 2 && receiver!.calls, 'two webhook calls', 20_000);
    await waitForScheduleJobsDrained(env.ctx, [JOB_NOTIFY]); // the schedule's 02:00 tick stays delayed

    expect(receiver.calls).toHaveLength(2); // one failure, one success, then nothing more
    expect(calls.map((c) => c.answered)).toEqual([500, 200]);
    for (const call of calls) {
      expect(call.batchStatus).toBe('finished'); // the batch ended before anyone called the webhook
      expect(call.headers['content-type']).toMatch(/^application\/json/);
      expect(call.headers[EVENT_HEADER]).toBe('batch.finished');
      expect(call.headers.authorization).toBeUndefined();
      expect(call.raw).not.toContain(TEST_KEY);
      const summary = JSON.parse(call.raw);
      expect(summary).toMatchObject({ batchId, kind: 'nightly', status: 'finished', source: 'tonight.csv', counts: { valid: 3, succeeded: 3, failed: 0 } });
      expect(summary.notes[0]).toMatch(/^scheduled run of "nightly" for .* Asia\/Kolkata \(started by hand: schedule run-now\)$/);
    }
    expect(calls[1]!.raw).toBe(calls[0]!.raw);
  });
});
