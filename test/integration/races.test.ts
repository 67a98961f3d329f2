/**
 * Check-then-act races on shared state: two operators, a double click or two processes doing the same thing at
 * the same moment must never do the work twice. Real Redis, real HTTP to the stand-in server, real BullMQ, real
 * CLI and console subprocesses; every test starts its contenders together and then counts what the stand-in
 * server was asked to do.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { BatchStateError, DuplicateUploadError, NoValidRowsError } from '../../src/domain/errors.js';
import { chatFromKey } from '../../src/domain/chat.js';
import { type IngestRow, openCsvSource } from '../../src/ingest/csv-source.js';
import { ingest, type IngestDeps, type RowSource } from '../../src/ingest/enqueue.js';
import { rerunBatch } from '../../src/ops/rerun.js';
import { writeReport } from '../../src/report/report.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { startTestConsole, type TestConsole } from '../helpers/console.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';
import { expectExactAccounting, simpleCsv } from '../helpers/accounting.js';
import { eventually } from '../helpers/eventually.js';
import { TEST_ACTOR } from '../helpers/actor.js';
import { scheduleStoreOf } from '../helpers/schedule.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
let con: TestConsole | undefined;
afterEach(async () => {
  await con?.close();
  con = undefined;
  await killAllChildren();
  await env?.cleanup();
  env = undefined;
});

/** Every chat the stand-in server unassigned, with how often: each must be 1. */
function callsPerChat(e: TestEnv): Map<number, number> {
  const byCount = new Map<number, number>();
  for (const n of Object.values(e.api.stats().unassigned)) byCount.set(n, (byCount.get(n) ?? 0) + 1);
  return byCount;
}

/**
 * Environment that makes CLI subprocesses begin at the same instant: a preload module (NODE_OPTIONS --import)
 * sleeps until a shared wall-clock time, so process start-up (a few hundred ms, varying) does not decide the race.
 */
function startTogether(delayMs = 1500): Record<string, string> {
  const wait = 'await new Promise((r) => setTimeout(r, Number(process.env.RACE_START_AT) - Date.now()));';
  return { RACE_START_AT: String(Date.now() + delayMs), NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(wait)}` };
}

async function openCsv(file: string): Promise<RowSource> {
  return openCsvSource({ file, maxFileBytes: 64 * 1024 * 1024, maxRecordBytes: 1024 * 1024, maxColumns: 1000 });
}

describe('races: duplicate-content guard', () => {
  it('six simultaneous console uploads of one file make one batch; five answers are 409 naming it; each chat is called once', async () => {
    env = await makeTestEnv();
    con = await startTestConsole(env, { extraEnv: { DUPLICATE_WINDOW_HOURS: '24' } });
    const { text, chatKeys } = simpleCsv(phones(1500, 20_000), WABA);

    const answers = await Promise.all(Array.from({ length: 6 }, () => con!.upload(text, 'same.csv')));

    const created = answers.filter((a) => a.status === 201);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    const batchId = created[0]!.body.id as string;
    for (const a of answers.filter((x) => x.status === 409)) {
      expect(a.body).toMatchObject({
        error: 'ERR_DUPLICATE_UPLOAD',
        earlierBatchId: batchId,
        message: expect.stringContaining(`already run as batch ${batchId}`),
      });
    }
    await env.waitFor(batchId, ['finished']);
    expect((await env.ctx.batches.list(20)).map((b) => b.id)).toEqual([batchId]);
    await expectExactAccounting(env, batchId, chatKeys);
    expect(callsPerChat(env)).toEqual(new Map([[1, chatKeys.length]]));
    expect(await env.ctx.redis.get(env.ctx.keys.sourceHash((await env.ctx.batches.require(batchId)).sha256))).toBe(batchId);
  });

  it('six concurrent ingests in one process: one batch, five DuplicateUploadErrors naming it', async () => {
    env = await makeTestEnv();
    const file = env.csv('same.csv', simpleCsv(phones(300, 30_000), WABA).text);
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => env!.ingestCsv(file, { duplicateWindowHours: 24 })));
    const made = outcomes.filter((o): o is PromiseFulfilledResult<BatchRecord> => o.status === 'fulfilled').map((o) => o.value);
    expect(made).toHaveLength(1);
    for (const o of outcomes.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect(o.reason).toBeInstanceOf(DuplicateUploadError);
      expect((o.reason as DuplicateUploadError).earlierBatchId).toBe(made[0]!.id);
    }
    expect((await env.ctx.batches.list(20)).map((b) => b.id)).toEqual([made[0]!.id]);
  });

  it('a failed ingest releases its claim: the same content runs right after; a removed holder is taken over; --force renames the holder', async () => {
    env = await makeTestEnv();
    const file = env.csv('good.csv', simpleCsv(phones(20, 40_000), WABA).text);
    // A failure after the content hash is known and claimed: the start transition is refused.
    const failing: IngestDeps = {
      ...env.ctx,
      batches: { ...env.ctx.batches, update: () => Promise.reject(new Error('injected failure after staging')) },
    };
    await expect(ingest(failing, await openCsv(file), { batch: { kind: 'csv', source: 'good.csv' }, duplicateWindowHours: 24 })).rejects.toThrow(
      'injected failure',
    );
    expect(await env.ctx.batches.list(20)).toEqual([]);
    const first = await env.ingestCsv(file, { duplicateWindowHours: 24 });
    const sourceKey = env.ctx.keys.sourceHash(first.sha256);
    expect(await env.ctx.redis.get(sourceKey)).toBe(first.id);

    // A file without one valid row claims nothing it keeps.
    const bad = env.csv('bad.csv', 'phone,waba\nnope,919000000000\n');
    await expect(env.ingestCsv(bad, { duplicateWindowHours: 24 })).rejects.toBeInstanceOf(NoValidRowsError);
    expect(await env.ctx.redis.keys(`${env.ctx.keys.sourceHash('')}*`)).toEqual([sourceKey]);

    // The holder is gone (expired or removed): the next upload takes the hash over.
    await env.ctx.batches.remove(first.id);
    const second = await env.ingestCsv(file, { duplicateWindowHours: 24 });
    expect(await env.ctx.redis.get(sourceKey)).toBe(second.id);
    await expect(env.ingestCsv(file, { duplicateWindowHours: 24 })).rejects.toThrow(`already run as batch ${second.id}`);
    const forced = await env.ingestCsv(file, { duplicateWindowHours: 24, force: true });
    expect(await env.ctx.redis.get(sourceKey)).toBe(forced.id);
    // Dry runs and a zero window neither check nor claim.
    const dry = await env.ingestCsv(file, { duplicateWindowHours: 24, dryRun: true });
    const unguarded = await env.ingestCsv(file, { duplicateWindowHours: 0 });
    expect(await env.ctx.redis.get(sourceKey)).toBe(forced.id);
    expect(await env.ctx.redis.ttl(sourceKey)).toBeGreaterThan(23 * 3600);
    expect(new Set([second.id, forced.id, dry.id, unguarded.id]).size).toBe(4);
  });
});

describe('races: ingest start', () => {
  it('a batch removed while its source is read does not start: the ingest fails and enqueues nothing', async () => {
    env = await makeTestEnv();
    const e = env;
    const keys = simpleCsv(phones(3000, 80_000), WABA).chatKeys;
    const source: RowSource = {
      header: ['phone', 'waba'],
      sha256: () => '',
      async *rows(): AsyncIterable<IngestRow> {
        for (const [i, key] of keys.entries()) {
          // Half-way, the batch record goes away (expired, or deleted by hand) while staging writes are in flight.
          if (i === 1500) for (const b of await e.ctx.batches.list(5)) await e.ctx.batches.remove(b.id);
          yield { kind: 'valid', row: { line: i + 2, chat: chatFromKey(key), key, cells: {} } };
        }
      },
    };
    await expect(ingest(e.ctx, source, { batch: { kind: 'csv', source: 'vanishing' }, duplicateWindowHours: 0 })).rejects.toThrow(
      /was removed while its source was read: nothing was enqueued/,
    );
    expect(await e.ctx.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active')).toEqual({ waiting: 0, prioritized: 0, delayed: 0, active: 0 });
    expect(await e.ctx.redis.keys(`${e.ctx.keys.batch('').batch}*`)).toEqual([]);
  });
});

/** A finished parent batch whose `n` chats all failed transiently (503), and the stand-in healed afterwards. */
async function failedParent(e: TestEnv, n: number): Promise<{ parent: BatchRecord; chatKeys: string[] }> {
  const numbers = phones(n, 50_000);
  e.api.setFaults({ flaky: Object.fromEntries(numbers.map((p) => [p, 100])) });
  const { text, chatKeys } = simpleCsv(numbers, WABA);
  e.worker();
  const parent = await e.waitFor((await e.ingestCsv(e.csv('parent.csv', text))).id, ['finished']);
  expect(parent.counts).toMatchObject({ valid: n, failed: n });
  e.api.setFaults({});
  e.api.reset();
  return { parent, chatKeys };
}

describe('races: rerun', () => {
  it('two simultaneous `rerun <id> --detach`: one child, the other exit 2 "already has a rerun in progress"; no chat called twice', async () => {
    env = await makeTestEnv({ config: { maxAttempts: 1 } });
    const { parent, chatKeys } = await failedParent(env, 2000);

    const together = startTogether();
    const clis = [spawnCli(env, ['rerun', parent.id, '--detach'], together), spawnCli(env, ['rerun', parent.id, '--detach'], together)];
    const exits = await Promise.all(clis.map((c) => c.exited));
    const codes = exits.map((x) => x.code).sort();
    expect({ codes, output: clis.map((c) => c.output()) }).toMatchObject({ codes: [0, 2] });
    const loser = clis[exits.findIndex((x) => x.code === 2)]!;
    expect(loser.output()).toMatch(new RegExp(`batch ${parent.id} already has a rerun in progress: \\S+`));

    const children = (await env.ctx.batches.require(parent.id)).children;
    expect(children).toHaveLength(1);
    expect((await env.ctx.batches.list(20)).map((b) => b.id).sort()).toEqual([parent.id, children[0]!].sort());
    const child = await env.waitFor(children[0]!, ['finished']);
    expect(child.counts).toMatchObject({ valid: chatKeys.length, succeeded: chatKeys.length });
    await expectExactAccounting(env, child.id, chatKeys);
    expect(callsPerChat(env)).toEqual(new Map([[1, chatKeys.length]]));
  });

  it('five concurrent rerunBatch calls in one process: one child, four BatchStateErrors', async () => {
    env = await makeTestEnv({ config: { maxAttempts: 1 } });
    const { parent } = await failedParent(env, 200);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => rerunBatch(env!.ctx, parent.id, TEST_ACTOR)));
    const made = outcomes.filter((o): o is PromiseFulfilledResult<BatchRecord> => o.status === 'fulfilled').map((o) => o.value);
    expect(made).toHaveLength(1);
    for (const o of outcomes.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect(o.reason).toBeInstanceOf(BatchStateError);
      expect((o.reason as Error).message).toContain(`batch ${parent.id} already has a rerun in progress: ${made[0]!.id}`);
    }
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([made[0]!.id]);
    // Once that child is final, the parent's slot is free: the next rerun goes.
    await env.waitFor(made[0]!.id, ['finished']);
    const next = await rerunBatch(env.ctx, parent.id, TEST_ACTOR);
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([made[0]!.id, next.id]);
    await env.waitFor(next.id, ['finished']);
  });

  it('a rerun whose ingest fails leaves the parent free for the next rerun, and its id off the parent', async () => {
    env = await makeTestEnv({ config: { maxAttempts: 1 } });
    const { parent } = await failedParent(env, 30);
    const failing = { ...env.ctx, batches: { ...env.ctx.batches, update: () => Promise.reject(new Error('injected failure after staging')) } };
    await expect(rerunBatch(failing, parent.id, TEST_ACTOR)).rejects.toThrow('injected failure');
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([]);
    const child = await rerunBatch(env.ctx, parent.id, TEST_ACTOR);
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([child.id]);
    await env.waitFor(child.id, ['finished']);
  });
});

describe('races: report writers', () => {
  it("five writers of one batch's report at once all succeed and leave complete files, no temporary ones", async () => {
    env = await makeTestEnv({ config: { maxAttempts: 1 } });
    const { parent } = await failedParent(env, 300);
    const dir = join(env.config.reportsDir, parent.id);
    await Promise.all(Array.from({ length: 5 }, () => writeReport(env!.ctx, parent, env!.config.reportsDir)));
    expect(readdirSync(dir).sort()).toEqual(['failed.csv', 'rejected.csv', 'summary.json', 'summary.md']);
    expect(readFileSync(join(dir, 'failed.csv'), 'utf8').trimEnd().split('\n')).toHaveLength(1 + 300);
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'))).toMatchObject({ batchId: parent.id, counts: { failed: 300 } });
  });
});

describe('races: batch notes', () => {
  it('50 concurrent addNote calls keep all 50 notes', async () => {
    env = await makeTestEnv();
    const batch = await env.ingestCsv(env.csv('n.csv', simpleCsv(phones(3, 60_000), WABA).text));
    const notes = Array.from({ length: 50 }, (_, i) => `note ${i}`);
    await Promise.all(notes.map((n) => env!.ctx.batches.addNote(batch.id, n)));
    expect([...(await env.ctx.batches.require(batch.id)).notes].sort()).toEqual([...notes].sort());
    await expect(env.ctx.batches.addNote('20200101-000000-000000', 'x')).rejects.toBeInstanceOf(BatchStateError);
  });
});

describe('races: schedule run-now', () => {
  it('two simultaneous `schedule run-now`: every inbox file becomes exactly one batch, each chat is called once', async () => {
    env = await makeTestEnv();
    const inbox = join(env.dir, 'inbox');
    mkdirSync(inbox, { recursive: true });
    const chatKeys: string[] = [];
    for (let f = 0; f < 3; f += 1) {
      const csv = simpleCsv(phones(200, 70_000 + f * 1000), WABA);
      writeFileSync(join(inbox, `drop-${f}.csv`), csv.text);
      chatKeys.push(...csv.chatKeys);
    }
    const set = spawnCli(env, ['schedule', 'set', 'drop', '--cron', '0 3 * * *', '--tz', 'UTC', '--inbox', 'inbox']);
    expect((await set.exited).code).toBe(0);
    env.worker();

    const together = startTogether();
    const runs = [spawnCli(env, ['schedule', 'run-now', 'drop'], together), spawnCli(env, ['schedule', 'run-now', 'drop'], together)];
    const exits = await Promise.all(runs.map((r) => r.exited));
    expect({ codes: exits.map((x) => x.code), output: runs.map((r) => r.output()) }).toMatchObject({ codes: [0, 0] });

    const batches = await env.ctx.batches.list(20);
    expect(batches.map((b) => b.source).sort()).toEqual(['drop-0.csv', 'drop-1.csv', 'drop-2.csv']);
    for (const b of batches) await env.waitFor(b.id, ['finished']);
    expect(readdirSync(join(inbox, 'processed')).sort()).toEqual(['drop-0.csv', 'drop-1.csv', 'drop-2.csv']);
    await eventually(async () => Object.keys(env!.api.stats().unassigned).length === chatKeys.length, {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'every chat unassigned',
    });
    expect(Object.keys(env.api.stats().unassigned).sort()).toEqual([...chatKeys].sort());
    expect(callsPerChat(env)).toEqual(new Map([[1, chatKeys.length]]));
  });
});

describe('races: schedule waiting mark', () => {
  it("clearing a finished run's waiting mark never removes the mark a newer run set at the same moment", async () => {
    env = await makeTestEnv();
    const schedules = scheduleStoreOf(env.ctx);
    await schedules.setWaiting('drop', { jobId: 'job-1', tick: 1, since: 1 });
    // One connection, in this order: job-1's mark is read for the clear, job-2 registers, then the clear acts.
    // A read-then-delete would delete job-2's mark; the compare-and-delete leaves it.
    const cleared = schedules.setWaiting('drop', undefined, 'job-1');
    const registered = schedules.setWaiting('drop', { jobId: 'job-2', tick: 2, since: 2 });
    await Promise.all([cleared, registered]);
    expect((await schedules.waiting('drop'))?.jobId).toBe('job-2');
    // The mark is still cleared when it is the job's own, and left when it is another's.
    await schedules.setWaiting('drop', undefined, 'job-1');
    expect((await schedules.waiting('drop'))?.jobId).toBe('job-2');
    await schedules.setWaiting('drop', undefined, 'job-2');
    expect(await schedules.waiting('drop')).toBeUndefined();
  });
});
