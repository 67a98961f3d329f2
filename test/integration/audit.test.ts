/**
 * The audit trail against real Redis and the stand-in API: the stream store (filters, order under concurrent
 * writes, retention trimming), and one entry with the right actor for every action taken through the library —
 * upload, dry run, pause/resume/cancel (a refused action and the losing one of two simultaneous pauses record
 * nothing), rerun, schedule set/run-now/remove, a scheduled tick — and a batch's summary naming its creator and
 * what was done to it. The CLI and the console (named operators) are in audit-adapters.test.ts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { cancelBatch, pauseBatch, resumeBatch } from '../../src/ops/batch-control.js';
import { rerunBatch } from '../../src/ops/rerun.js';
import { uploadCsv } from '../../src/app/upload.js';
import { completeDryRun } from '../../src/app/dry-run.js';
import { removeSchedule, runScheduleNow, scheduleStoreOf, setSchedule } from '../../src/app/schedules.js';
import { listAudit } from '../../src/app/audit.js';
import { runSchedule } from '../../src/schedule/run.js';
import { makeApiClient } from '../../src/execution/api-client.js';
import { makePacer } from '../../src/execution/pacer.js';
import { makeAuditStore } from '../../src/store/audit-store.js';
import { scheduleActor, type Actor } from '../../src/domain/actor.js';
import { Status } from '../../src/domain/lifecycle.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { TEST_ACTOR } from '../helpers/actor.js';

const WABA = '919000000000';
const ALICE: Actor = { name: 'alice', via: 'console', from: '10.0.0.7' };
const BOB: Actor = { name: 'bob@ops-1', via: 'cli', from: 'ops-1' };

let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

function csvOf(numbers: readonly string[], extra = ''): string {
  return `customerPhoneNumber,wabaNumber\n${numbers.map((p) => `+${p},${WABA}`).join('\n')}\n${extra}`;
}

describe('audit store', () => {
  it('keeps every one of many concurrent entries, in Redis order, and filters by batch, actor and time', async () => {
    env = await makeTestEnv();
    const { audit } = env.ctx;
    const recorded = await Promise.all(
      Array.from({ length: 50 }, (_, i) => audit.record({ actor: i % 2 ? ALICE : BOB, action: 'pause', batchId: `20261203-000000-00000${i % 3}` })),
    );
    expect(new Set(recorded.map((e) => e.id)).size).toBe(50);
    const all = await audit.list();
    expect(all).toHaveLength(50);
    const order = (id: string): [number, number] => id.split('-').map(Number) as [number, number];
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => order(a)[0] - order(b)[0] || order(a)[1] - order(b)[1]));
    expect(await audit.list({ actor: 'alice' })).toHaveLength(25);
    expect((await audit.list({ batchId: '20261203-000000-000000' })).every((e) => e.batchId === '20261203-000000-000000')).toBe(true);
    expect(await audit.list({ batchId: '20261203-000000-000000', actor: 'alice' })).toHaveLength(8);
    expect(await audit.list({ limit: 5 })).toEqual(all.slice(-5));
    expect(await audit.list({ since: Date.now() + 60_000 })).toEqual([]);
    expect(all[0]).toMatchObject({ actor: 'bob@ops-1', via: 'cli', from: 'ops-1', action: 'pause', details: {} });
  });

  it('trims entries older than the retention window as it appends (whole stream nodes at a time)', async () => {
    env = await makeTestEnv({ config: { auditRetentionDays: 1 } });
    // Entries from three days ago, as a stream that has been growing would hold them.
    const old = Date.now() - 3 * 86_400_000;
    for (let i = 0; i < 250; i += 1)
      await env.ctx.redis.xadd(env.ctx.keys.audit, `${old}-${i}`, 'actor', 'bob', 'via', 'cli', 'action', 'resume', 'details', '{}');
    expect(await env.ctx.redis.xlen(env.ctx.keys.audit)).toBe(250);
    const now = await env.ctx.audit.record({ actor: ALICE, action: 'cancel' });
    // Approximate trimming drops whole nodes (100 entries by default): at most one node of old entries is left.
    expect(await env.ctx.redis.xlen(env.ctx.keys.audit)).toBeLessThanOrEqual(101);
    expect((await env.ctx.audit.list()).at(-1)?.id).toBe(now.id);
    expect(await env.ctx.audit.list({ since: Date.now() - 86_400_000 })).toEqual([now]);
  });

  it('skips a damaged entry instead of failing the read', async () => {
    env = await makeTestEnv();
    await env.ctx.redis.xadd(env.ctx.keys.audit, '*', 'actor', 'x', 'via', 'martian', 'action', 'pause');
    await env.ctx.redis.xadd(env.ctx.keys.audit, '*', 'actor', 'x', 'via', 'cli', 'action', 'pause', 'details', '{not json');
    const entries = await makeAuditStore(env.ctx.redis, env.ctx.keys.audit, 365).list();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: 'x', details: {} });
  });
});

describe('every action records one entry with its actor', () => {
  it('upload and dry run: file, content hash, counts and options; the batch names its creator', async () => {
    env = await makeTestEnv();
    const file = env.csv('chats.csv', csvOf(phones(3), 'not-a-number,1\n'));
    const batch = await uploadCsv(env.ctx, { file, actor: ALICE, name: 'Q4', force: true });
    expect(batch.createdBy).toBe('alice');
    const dry = await uploadCsv(env.ctx, { file: env.csv('dry.csv', csvOf(phones(2, 10))), actor: BOB, dryRun: true });
    await completeDryRun(env.ctx, dry);
    const entries = await env.ctx.audit.list();
    expect(entries.map((e) => [e.action, e.actor, e.batchId])).toEqual([
      ['upload', 'alice', batch.id],
      ['dry-run', 'bob@ops-1', dry.id],
    ]);
    expect(entries[0]).toMatchObject({
      via: 'console',
      from: '10.0.0.7',
      details: { file: 'chats.csv', sha256: batch.sha256, rows: 4, valid: 3, rejected: 1, duplicates: 0, name: 'Q4', force: true },
    });
    expect(batch.sha256).toMatch(/^[0-9a-f]{64}$/);
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, dry.id, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ createdBy: 'bob@ops-1', actions: [{ actor: 'bob@ops-1', action: 'dry-run' }] });
  });

  it('pause, resume, cancel: one entry each; a refused action and the loser of two simultaneous pauses record nothing', async () => {
    env = await makeTestEnv();
    const batch = await uploadCsv(env.ctx, { file: env.csv('a.csv', csvOf(phones(40))), actor: TEST_ACTOR });
    const pauses = await Promise.allSettled([pauseBatch(env.ctx, batch.id, ALICE), pauseBatch(env.ctx, batch.id, BOB)]);
    expect(pauses.filter((p) => p.status === 'fulfilled')).toHaveLength(1);
    expect(pauses.filter((p) => p.status === 'rejected')).toHaveLength(1);
    await expect(pauseBatch(env.ctx, batch.id, ALICE)).rejects.toThrow(/cannot pause batch/);
    await resumeBatch(env.ctx, batch.id, BOB);
    await expect(resumeBatch(env.ctx, batch.id, BOB)).rejects.toThrow(/cannot resume batch/);
    const cancels = await Promise.allSettled([cancelBatch(env.ctx, batch.id, ALICE), cancelBatch(env.ctx, batch.id, ALICE)]);
    expect(cancels.filter((p) => p.status === 'fulfilled')).toHaveLength(1);
    const entries = await listAudit(env.ctx, { batch: batch.id });
    const winner = pauses[0]!.status === 'fulfilled' ? 'alice' : 'bob@ops-1';
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['upload', 'test-operator'],
      ['pause', winner],
      ['resume', 'bob@ops-1'],
      ['cancel', 'alice'],
    ]);
    expect(entries[1]!.details).toEqual({ from: Status.running });
  });

  it('rerun: recorded on the new batch and found under its parent; the parent report lists it, the child names its creator', async () => {
    const failing = phones(4, 100);
    env = await makeTestEnv({ api: { faults: { flaky: Object.fromEntries(failing.map((p) => [p, 100])) } }, config: { maxAttempts: 2 } });
    env.worker();
    const parent = await uploadCsv(env.ctx, { file: env.csv('p.csv', csvOf([...phones(3, 200), ...failing])), actor: BOB });
    await env.waitFor(parent.id, [Status.finished]);
    const child = await rerunBatch(env.ctx, parent.id, ALICE, { dryRun: true });
    expect(child.createdBy).toBe('alice');
    const rerun = (await listAudit(env.ctx, { batch: child.id })).find((e) => e.action === 'rerun');
    expect(rerun).toMatchObject({ actor: 'alice', batchId: child.id, details: { parent: parent.id, chats: 4, dryRun: true } });
    expect((await listAudit(env.ctx, { batch: parent.id })).map((e) => e.action)).toEqual(['upload', 'rerun']);
    const real = await rerunBatch(env.ctx, parent.id, BOB);
    await env.waitFor(real.id, [Status.finished]);
    const parentSummary = JSON.parse(readFileSync(join(env.config.reportsDir, parent.id, 'summary.json'), 'utf8'));
    expect(parentSummary.createdBy).toBe('bob@ops-1');
    expect(parentSummary.actions.map((a: { actor: string; action: string }) => `${a.action} ${a.actor}`)).toEqual([
      'upload bob@ops-1',
      'rerun alice',
      'rerun bob@ops-1',
    ]);
    const childMd = readFileSync(join(env.config.reportsDir, real.id, 'summary.md'), 'utf8');
    expect(childMd).toContain('**Created by:** bob@ops-1');
    expect(childMd).toMatch(/\| rerun \|/);
  });

  it('schedules: set, run-now, remove by the operator; a tick that started batches by the schedule, with the batch ids', async () => {
    env = await makeTestEnv();
    env.worker();
    const inbox = join(env.dir, 'inbox');
    mkdirSync(inbox);
    const schedules = scheduleStoreOf(env.ctx);
    const { definition } = await setSchedule(env.ctx, schedules, 'drop', { cron: '0 3 * * *', tz: 'UTC', inbox, waba: WABA }, { cwd: env.dir }, ALICE);
    writeFileSync(join(inbox, 'one.csv'), csvOf(phones(2, 300)));
    const now = await runScheduleNow(env.ctx, schedules, 'drop', { actor: BOB });
    expect(now.batches.map((b) => b.createdBy)).toEqual(['bob@ops-1']);

    // A tick as the worker's nightly job runs it (not manual): two files, two batches, one entry.
    writeFileSync(join(inbox, 'two.csv'), csvOf(phones(2, 400)));
    writeFileSync(join(inbox, 'three.csv'), csvOf(phones(2, 500)));
    const api = makeApiClient({ baseUrl: env.config.baseUrl, apiKey: env.config.apiKey!, requestTimeoutMs: 2000 });
    const pacer = makePacer(env.ctx.redis, env.ctx.keys, { max: 0, durationMs: 1000 });
    let tickBatches: string[];
    try {
      // The previous run's batch must be settled for the overlap rule.
      await env.waitFor(now.batches[0]!.id, [Status.finished]);
      const result = await runSchedule(
        { ...env.ctx, schedules, api, pace: () => pacer.acquire(), rateLimit: (ms) => pacer.pause(ms) },
        { definition, tick: Date.now(), owner: 'tick-test' },
      );
      if (result.kind !== 'done') throw new Error(`tick was busy: ${result.blockedBy}`);
      tickBatches = result.batches.map((b) => b.id);
      expect(result.batches.map((b) => b.createdBy)).toEqual(['schedule drop', 'schedule drop']);
    } finally {
      api.close();
    }
    await removeSchedule(env.ctx, schedules, 'drop', ALICE);
    await expect(removeSchedule(env.ctx, schedules, 'drop', ALICE)).rejects.toThrow(/no schedule named "drop"/);

    const entries = (await env.ctx.audit.list()).filter((e) => e.action.startsWith('schedule'));
    expect(entries.map((e) => [e.action, e.actor, e.via])).toEqual([
      ['schedule-set', 'alice', 'console'],
      ['schedule-run-now', 'bob@ops-1', 'cli'],
      ['schedule-tick', scheduleActor('drop').name, 'schedule'],
      ['schedule-remove', 'alice', 'console'],
    ]);
    expect(entries[0]!.details).toMatchObject({ schedule: 'drop', created: true, cron: '0 3 * * *', tz: 'UTC' });
    expect(entries[1]).toMatchObject({ batchId: now.batches[0]!.id, details: { schedule: 'drop', outcome: 'started' } });
    expect(entries[2]!.details).toMatchObject({ schedule: 'drop', batches: tickBatches.join(',') });
    // The tick is found under each batch it started.
    for (const id of tickBatches) expect((await listAudit(env.ctx, { batch: id })).map((e) => e.action)).toEqual(['schedule-tick']);
  });
});
