/**
 * The brake: a batch above its limit (MAX_BATCH_CHATS, or a schedule's --max-chats) is held for approval and
 * calls nothing until an operator approves it; rejecting it, or letting it expire, calls nothing and ends every
 * chat `cancelled` with a report. Checked against the stand-in's own request log (real Redis, real HTTP):
 *  - a scheduled rule over --max-chats: held, no unassign call, two simultaneous approves → one start (the
 *    other refused, saying so), then every selected chat unassigned exactly once;
 *  - reject and expiry: the stand-in sees no call, every chat is `cancelled`, the report is written;
 *  - two `approve` processes at once, approve racing the expiry: exactly one wins;
 *  - a CSV above MAX_BATCH_CHATS is held (run exits 4, naming the approve command); --approve runs it;
 *  - each approve / reject / expire / --approve skip leaves exactly one audit entry;
 *  - NOTIFY_WEBHOOK_URL gets `batch.needs_approval` with the reason, a masked sample and the commands.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { cancelBatch } from '../../src/ops/batch-control.js';
import { approveBatch, expireApproval, rejectBatch } from '../../src/ops/approval.js';
import { uploadCsv } from '../../src/app/upload.js';
import { EVENT_HEADER } from '../../src/report/webhook-events.js';
import { approvalExpiryJobId, JOB_NOTIFY } from '../../src/store/queue.js';
import type { Actor } from '../../src/domain/actor.js';
import { BatchStateError } from '../../src/domain/errors.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';
import { eventually } from '../helpers/eventually.js';
import { waitForScheduleJobsDrained } from '../helpers/schedule.js';
import { closeTestConsole, startTestConsole, type TestConsole } from '../helpers/console.js';
import { TEST_ACTOR } from '../helpers/actor.js';

const WABA = '919000000000';
const ALICE: Actor = { name: 'alice', via: 'cli', from: 'host-a' };
const BOB: Actor = { name: 'bob', via: 'console', from: '127.0.0.1' };

let env: TestEnv | undefined;
let receiver: Server | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  await new Promise((r) => (receiver ? receiver.close(r) : r(undefined)));
  env = undefined;
  receiver = undefined;
});

/** Unassign calls the stand-in received (its `requests` counts those only, not the listings). */
function unassignCalls(e: TestEnv): number {
  return e.api.stats().requests;
}

/** Jobs that would call the API: waiting, prioritized or running unassign jobs. */
async function callableJobs(e: TestEnv): Promise<number> {
  const counts = await e.ctx.queue.getJobCounts('waiting', 'prioritized', 'active');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

async function heldCsv(e: TestEnv, n: number, name = 'big.csv', start = 0): Promise<string> {
  const batch = await uploadCsv(e.ctx, { file: e.csv(name, `phone\n${phones(n, start).join('\n')}\n`), waba: WABA, actor: ALICE });
  expect(batch.status).toBe('awaiting-approval');
  return batch.id;
}

async function auditOf(e: TestEnv, batchId: string): Promise<{ actor: string; action: string; details: Record<string, unknown> }[]> {
  return (await e.ctx.audit.list({ batchId })).map(({ actor, action, details }) => ({ actor, action, details }));
}

describe('the brake: a scheduled rule over --max-chats', () => {
  it('is held and calls nothing; of two simultaneous approves one starts it, the other is refused; then every chat is unassigned once', async () => {
    env = await makeTestEnv({ api: { seedChats: 120 } });
    env.worker();
    const set = spawnCli(env, ['schedule', 'set', 'tidy', '--cron', '0 2 * * *', '--tz', 'UTC', '--chat-status', 'all', '--waba', WABA, '--max-chats', '5']);
    expect((await set.exited).code).toBe(0);
    expect(set.output()).toContain('more than 5 chats (--max-chats)');
    const runNow = spawnCli(env, ['schedule', 'run-now', 'tidy', '--json']);
    expect((await runNow.exited).code).toBe(4); // held for approval: nothing sent
    const batchId = JSON.parse(runNow.output()).run.batchIds[0] as string;

    const held = await env.ctx.batches.require(batchId);
    expect(held.status).toBe('awaiting-approval');
    expect(held.counts.valid).toBeGreaterThan(5);
    expect(held.reason).toBe(`held for approval: ${held.counts.valid} chats, more than the schedule's --max-chats (5)`);
    // What it would send: ten chats, phone numbers masked (group ids are not personal data).
    expect(held.sample).toHaveLength(10);
    for (const chat of held.sample) expect(chat).toMatch(/^(p:9\d{3}\*+\d{2}@919000000000|g:grp_\d+)$/);
    for (const chat of env.api.chats()) if (chat.phoneNumber) expect(held.sample.join(' ')).not.toContain(chat.phoneNumber);
    expect(await callableJobs(env)).toBe(0);
    expect(unassignCalls(env)).toBe(0);

    // `status` says why and how to go on.
    const status = spawnCli(env, ['status', batchId]);
    expect((await status.exited).code).toBe(0);
    expect(status.output()).toContain(held.reason);
    expect(status.output()).toContain(`bulk-unassign approve ${batchId}`);
    expect(status.output()).toContain(held.sample[0]!);
    const list = spawnCli(env, ['batches', '--status', 'awaiting-approval']);
    expect((await list.exited).code).toBe(0);
    expect(list.output()).toContain(batchId);
    expect(list.output()).toContain('--max-chats (5)');
    // Cancel is refused on a held batch and points at reject.
    await expect(cancelBatch(env.ctx, batchId, ALICE)).rejects.toThrow(`it is held for approval: end it with \`bulk-unassign reject ${batchId}\``);
    expect(unassignCalls(env)).toBe(0);

    // Two operators approve at once: exactly one starts it.
    const outcomes = await Promise.allSettled([approveBatch(env.ctx, batchId, ALICE), approveBatch(env.ctx, batchId, BOB)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(BatchStateError);
    expect((refused[0]!.reason as Error).message).toMatch(
      new RegExp(`^cannot approve batch ${batchId}: it is (running|finalizing|finished), it was already approved`),
    );
    expect((won[0] as PromiseFulfilledResult<number>).value).toBe(held.counts.valid);

    const done = await env.waitFor(batchId, ['finished']);
    expect(done.counts.succeeded).toBe(held.counts.valid);
    const unassigned = env.api.stats().unassigned;
    expect(Object.keys(unassigned)).toHaveLength(held.counts.valid);
    expect(Object.values(unassigned).every((n) => n === 1)).toBe(true);
    expect(unassignCalls(env)).toBe(held.counts.valid);
    const audit = await auditOf(env, batchId);
    expect(audit.filter((a) => a.action === 'approve')).toHaveLength(1);
    expect(done.notes.some((n) => /^approved by (alice|bob) \(held for approval: /.test(n))).toBe(true);
    // The expiry job went with the approval.
    expect(await env.ctx.queue.getJob(approvalExpiryJobId(batchId))).toBeUndefined();
  });

  it('--max-share holds a rule that selects more than that share of the chats listed', async () => {
    env = await makeTestEnv({ api: { seedChats: 60 } });
    expect((await spawnCli(env, ['schedule', 'set', '--cron', '0 2 * * *', '--tz', 'UTC', '--chat-status', 'all', '--max-share', '0.01']).exited).code).toBe(0);
    const runNow = spawnCli(env, ['schedule', 'run-now', '--json']);
    expect((await runNow.exited).code).toBe(4);
    const batch = await env.ctx.batches.require(JSON.parse(runNow.output()).run.batchIds[0] as string);
    expect(batch.status).toBe('awaiting-approval');
    expect(batch.reason).toMatch(/^held for approval: \d+ chats, \d+% of the 60 chats listed, more than the schedule's --max-share \(0\.01\)$/);
    expect(unassignCalls(env)).toBe(0);
  });

  it.each([
    ['--max-share', '0', 'Expected `--max-share` to be a fraction above 0 and at most 1'],
    ['--max-share', '1.5', 'Expected `--max-share` to be a fraction above 0 and at most 1'],
    ['--max-chats', '0', 'Expected `--max-chats` to be a whole number of chats from 1'],
    ['--max-chats', '2.5', 'Expected `--max-chats` to be a whole number of chats from 1'],
  ])('schedule set %s %s is refused with a clear message', async (flag, value, message) => {
    env = await makeTestEnv();
    const set = spawnCli(env, ['schedule', 'set', '--cron', '0 2 * * *', '--tz', 'UTC', '--chat-status', 'all', flag, value]);
    expect((await set.exited).code).toBe(2);
    expect(set.output()).toContain(message);
  });
});

describe('the brake: reject and expiry call nothing', () => {
  it('reject: no call, every chat cancelled, the report written, one audit entry; approving afterwards is refused', async () => {
    env = await makeTestEnv({ config: { maxBatchChats: 5 } });
    env.worker();
    const batchId = await heldCsv(env, 8);
    expect(await rejectBatch(env.ctx, batchId, BOB)).toBe(8);
    const done = await env.waitFor(batchId, ['cancelled']);
    expect(done.counts).toMatchObject({ valid: 8, succeeded: 0, failed: 0, cancelled: 8 });
    expect(done.notes).toContain('rejected by bob (held for approval: 8 chats, more than MAX_BATCH_CHATS (5)): nothing was sent');
    expect(unassignCalls(env)).toBe(0);
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, batchId, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ batchId, status: 'cancelled', counts: { cancelled: 8 } });
    expect((await auditOf(env, batchId)).filter((a) => a.action === 'reject')).toEqual([
      { actor: 'bob', action: 'reject', details: { chats: 8, heldFor: 'held for approval: 8 chats, more than MAX_BATCH_CHATS (5)' } },
    ]);
    await expect(approveBatch(env.ctx, batchId, ALICE)).rejects.toThrow(
      `cannot approve batch ${batchId}: it is cancelled, it was already rejected by bob; see`,
    );
    await expect(rejectBatch(env.ctx, batchId, ALICE)).rejects.toThrow(`cannot reject batch ${batchId}: it is cancelled, it was already rejected by bob; see`);
    expect(unassignCalls(env)).toBe(0);
  });

  it('expiry: a delayed job of APPROVAL_TIMEOUT_HOURS; when it runs, no call, every chat cancelled, one `expire` entry by the worker', async () => {
    env = await makeTestEnv({ config: { maxBatchChats: 5, approvalTimeoutHours: 3 } });
    env.worker();
    const batchId = await heldCsv(env, 7);
    const job = await env.ctx.queue.getJob(approvalExpiryJobId(batchId));
    expect(job).toBeDefined();
    expect(await job!.getState()).toBe('delayed');
    expect(job!.opts.delay).toBe(3 * 3_600_000);
    expect((await env.ctx.batches.require(batchId)).approvalExpiresAt).toBeGreaterThan(Date.now() + 2.9 * 3_600_000);
    // Time passes: the job becomes due now instead of in three hours.
    await job!.promote();
    const done = await env.waitFor(batchId, ['cancelled']);
    expect(done.notes).toContain('approval expired after 3 hours (held for approval: 7 chats, more than MAX_BATCH_CHATS (5)): nothing was sent');
    expect(done.counts).toMatchObject({ valid: 7, succeeded: 0, cancelled: 7 });
    expect(existsSync(join(env.config.reportsDir, batchId, 'summary.json'))).toBe(true);
    expect(unassignCalls(env)).toBe(0);
    await expect(approveBatch(env.ctx, batchId, ALICE)).rejects.toThrow(
      `cannot approve batch ${batchId}: it is cancelled, its approval expired after 3 hours; see`,
    );
    expect((await auditOf(env, batchId)).filter((a) => a.action === 'expire')).toEqual([
      { actor: 'bulk-unassign', action: 'expire', details: { chats: 7, heldFor: 'held for approval: 7 chats, more than MAX_BATCH_CHATS (5)', hours: 3 } },
    ]);
  });

  it('expiry with a short delay (the brake takes it in ms): the worker rejects the batch by itself when the delay is over', async () => {
    env = await makeTestEnv();
    env.worker();
    const held = await env.ingestCsv(env.csv('short.csv', `phone\n${phones(4, 500).join('\n')}\n`), {
      waba: WABA,
      brake: { limits: { maxBatchChats: 3 }, expireAfterMs: 300, notify: false },
    });
    expect(held.status).toBe('awaiting-approval');
    const done = await env.waitFor(held.id, ['cancelled']);
    expect(done.counts).toMatchObject({ valid: 4, cancelled: 4 });
    expect(unassignCalls(env)).toBe(0);
    expect((await auditOf(env, held.id)).map((a) => a.action)).toEqual(['expire']);
  });

  it('approve racing the expiry: exactly one wins, and the chats are either all sent once or all cancelled', async () => {
    env = await makeTestEnv({ config: { maxBatchChats: 5 } });
    env.worker();
    for (let round = 0; round < 3; round += 1) {
      const batchId = await heldCsv(env, 6, `race-${round}.csv`, round * 100);
      const [approved, expired] = await Promise.allSettled([approveBatch(env.ctx, batchId, ALICE), expireApproval(env.ctx, batchId, 72)]);
      const approveWon = approved.status === 'fulfilled';
      const expireWon = expired.status === 'fulfilled' && expired.value;
      expect([approveWon, expireWon].filter(Boolean)).toHaveLength(1);
      const done = await env.waitFor(batchId, approveWon ? ['finished'] : ['cancelled']);
      expect(done.counts[approveWon ? 'succeeded' : 'cancelled']).toBe(6);
      const actions = (await auditOf(env, batchId)).map((a) => a.action).filter((a) => a === 'approve' || a === 'expire');
      expect(actions).toEqual([approveWon ? 'approve' : 'expire']);
    }
  });
});

describe('the brake: CSV uploads above MAX_BATCH_CHATS', () => {
  it('`run` holds the file and exits 4 naming `approve`; two `approve` processes at once start it once; `upload --approve` skips the brake (audited)', async () => {
    env = await makeTestEnv();
    const brake = { MAX_BATCH_CHATS: '5' };
    const file = env.csv('big.csv', `phone\n${phones(9).join('\n')}\n`);
    const run = spawnCli(env, ['run', file, '--waba', WABA], brake);
    expect((await run.exited).code).toBe(4);
    expect(run.output()).toContain('held for approval: 9 chats, more than MAX_BATCH_CHATS (5)');
    const batchId = /batch (\d{8}-\d{6}-[0-9a-f]{6}) \(/.exec(run.output())![1]!;
    expect(run.output()).toContain(`bulk-unassign approve ${batchId}`);
    expect(unassignCalls(env)).toBe(0);

    const approvers = [spawnCli(env, ['approve', batchId], { ...brake, BULK_UNASSIGN_ACTOR: 'carol' }), spawnCli(env, ['approve', batchId], brake)];
    const codes = (await Promise.all(approvers.map((a) => a.exited))).map((s) => s.code);
    expect(codes.sort()).toEqual([0, 2]);
    const loser = approvers.find((a) => a.output().includes('cannot approve'))!;
    expect(loser.output()).toContain(`cannot approve batch ${batchId}: it is running, it was already approved`);
    env.worker();
    const done = await env.waitFor(batchId, ['finished']);
    expect(done.counts.succeeded).toBe(9);
    expect(Object.values(env.api.stats().unassigned).every((n) => n === 1)).toBe(true);
    expect((await auditOf(env, batchId)).filter((a) => a.action === 'approve')).toHaveLength(1);

    const upload = spawnCli(env, ['upload', env.csv('second.csv', `phone\n${phones(7, 100).join('\n')}\n`), '--waba', WABA, '--approve', '--json'], {
      ...brake,
      BULK_UNASSIGN_ACTOR: 'dave',
    });
    expect((await upload.exited).code).toBe(0);
    const uploaded = JSON.parse(upload.output().slice(0, upload.output().lastIndexOf('}') + 1));
    expect(uploaded.status).toBe('running');
    expect(uploaded.notes).toContain('brake skipped with --approve: it would have been held for approval: 7 chats, more than MAX_BATCH_CHATS (5)');
    expect((await auditOf(env, uploaded.id)).filter((a) => a.action === 'approve')).toEqual([
      { actor: 'dave', action: 'approve', details: { skippedBrake: true, reason: 'held for approval: 7 chats, more than MAX_BATCH_CHATS (5)' } },
    ]);
    await env.waitFor(uploaded.id, ['finished']);
  });

  it('MAX_BATCH_CHATS=0 holds nothing', async () => {
    env = await makeTestEnv({ config: { maxBatchChats: 0 } });
    const batch = await uploadCsv(env.ctx, { file: env.csv('big.csv', `phone\n${phones(20).join('\n')}\n`), waba: WABA, actor: TEST_ACTOR });
    expect(batch.status).toBe('running');
  });
});

describe('the brake: batch.needs_approval webhook', () => {
  it('POSTs the event with the reason, a masked sample and the commands', async () => {
    const calls: { headers: IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        calls.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    env = await makeTestEnv({ config: { maxBatchChats: 5, notifyWebhookUrl: url } });
    env.worker();
    const batchId = await heldCsv(env, 12);
    const [call] = await eventually(() => calls.length > 0 && calls, { timeoutMs: 20_000, message: () => 'the webhook call' });
    await waitForScheduleJobsDrained(env.ctx, [JOB_NOTIFY]);
    expect(calls).toHaveLength(1);
    expect(call!.headers[EVENT_HEADER]).toBe('batch.needs_approval');
    expect(call!.body).toMatchObject({
      event: 'batch.needs_approval',
      batchId,
      name: batchId,
      chats: 12,
      reason: 'held for approval: 12 chats, more than MAX_BATCH_CHATS (5)',
      approve: `bulk-unassign approve ${batchId}`,
      reject: `bulk-unassign reject ${batchId}`,
    });
    const sample = call!.body.sample as string[];
    expect(sample).toHaveLength(10);
    for (const p of phones(12)) expect(JSON.stringify(call!.body)).not.toContain(p);
    expect(unassignCalls(env)).toBe(0);
  });
});

describe('the brake in the console', () => {
  let con: TestConsole | undefined;
  afterEach(async () => {
    await closeTestConsole(con, undefined);
    con = undefined;
  });

  it('shows a held upload with its reason, sample and approve/reject actions; approve and reject are POSTs, refused twice, and audited', async () => {
    env = await makeTestEnv();
    con = await startTestConsole(env, { extraEnv: { MAX_BATCH_CHATS: '4' } });
    const first = await con.upload(`phone\n${phones(6).join('\n')}\n`, 'big.csv', { waba: WABA });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      status: 'awaiting-approval',
      reason: 'held for approval: 6 chats, more than MAX_BATCH_CHATS (4)',
      actions: ['approve', 'reject'],
    });
    expect(first.body.sample).toHaveLength(6);
    const heldId = first.body.id as string;
    const page = await con.json<Record<string, unknown>>(`/api/batches/${heldId}`);
    expect(page.body).toMatchObject({ status: 'awaiting-approval', actions: ['approve', 'reject'] });
    expect(unassignCalls(env)).toBe(0);

    // A cookie-authenticated approve from another origin is refused like pause.
    const cross = await con.request(`/api/batches/${heldId}/approve`, { auth: false, method: 'POST', headers: { origin: 'http://evil.example' } });
    expect([401, 403]).toContain(cross.status);
    const [a, b] = await Promise.all([
      con.json<Record<string, unknown>>(`/api/batches/${heldId}/approve`, { method: 'POST' }),
      con.json<Record<string, unknown>>(`/api/batches/${heldId}/approve`, { method: 'POST' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect(String((a.status === 409 ? a : b).body.message)).toContain('already approved');
    await env.waitFor(heldId, ['finished']);
    expect(unassignCalls(env)).toBe(6);

    const second = await con.upload(`phone\n${phones(5, 200).join('\n')}\n`, 'other.csv', { waba: WABA });
    const rejectedId = second.body.id as string;
    const rejected = await con.json<Record<string, unknown>>(`/api/batches/${rejectedId}/reject`, { method: 'POST' });
    expect(rejected.status).toBe(200);
    expect(rejected.body.chats).toBe(5);
    await env.waitFor(rejectedId, ['cancelled']);
    expect(unassignCalls(env)).toBe(6);

    const third = await con.upload(`phone\n${phones(5, 300).join('\n')}\n`, 'approved.csv', { waba: WABA, approve: 'true' });
    expect(third.body.status).toBe('running');

    const audit = [...(await auditOf(env, heldId)), ...(await auditOf(env, rejectedId)), ...(await auditOf(env, third.body.id as string))];
    expect(audit.filter((e) => ['approve', 'reject'].includes(e.action)).map((e) => [e.actor, e.action, e.details.skippedBrake ?? false])).toEqual([
      ['console', 'approve', false],
      ['console', 'reject', false],
      ['console', 'approve', true],
    ]);
  });
});
