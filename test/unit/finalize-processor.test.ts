/**
 * jobs/finalize.ts `makeFinalizeProcessor` from source: which final status it settles on, the order of its
 * steps (report, then retention, then status), the finish hook, and re-delivery. Stores are in-memory fakes;
 * the report is written for real into a temp dir over a fake connection that serves a batch WITHOUT failed
 * chats (test/unit/fakes/report-redis.ts). The report of failed chats needs real Redis: integration tier
 * (test/integration/ops.test.ts, report-order.test.ts).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Job } from 'bullmq';

import { type FinalizeDeps, makeFinalizeProcessor } from '../../jobs/finalize.js';
import { DAY } from '../../src/config/config.js';
import { type BatchStatus, Status } from '../../src/domain/lifecycle.js';
import { makeKeys } from '../../src/store/keys.js';
import type { FinalizeJobData } from '../../src/store/queue.js';
import type { ReportSummary } from '../../src/report/report.js';
import { batchRecord, type FakeBatchStore, fakeBatchStore, fakeResultStore } from './fakes/stores.js';
import { fakeAuditStore } from './fakes/audit.js';
import { LEVEL, type LogLine, memoryLogger } from './fakes/logger.js';
import { reportRedis } from './fakes/report-redis.js';

const BATCH = '20251125-100000-abcdef';
const TTL_DAYS = 7;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'finalize-unit-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const job = (batchId = BATCH): Job<FinalizeJobData> => ({ data: { b: batchId } }) as unknown as Job<FinalizeJobData>;

interface Rig {
  readonly run: (j: Job<FinalizeJobData>) => Promise<string>;
  readonly batches: FakeBatchStore;
  readonly reportsDir: string;
  readonly finished: ReportSummary[];
  readonly logs: LogLine[];
  /** Steps in order: expire, apply:<transition>, hook; `report` when summary.json first exists at a later step. */
  readonly steps: string[];
}

function rig(options: { status?: BatchStatus; cancelled?: number; exists?: boolean; hook?: (s: ReportSummary) => Promise<void> } = {}): Rig {
  const cancelled = options.cancelled ?? 0;
  const batches = fakeBatchStore(
    options.exists === false
      ? []
      : [
          batchRecord({
            id: BATCH,
            status: options.status ?? Status.finalizing,
            counts: { rows: 11, valid: 10, rejected: 1, succeeded: 10 - cancelled, cancelled },
            done: 10,
            attempts: 12,
            rateLimited: 2,
          }),
        ],
  );
  const results = fakeResultStore(batches);
  const keys = makeKeys('unit');
  const { redis, lists, hashes } = reportRedis();
  lists.set(keys.batch(BATCH).rejected, [
    JSON.stringify({ line: 3, column: 'phone', raw: '12345', reason: 'too short', cells: { phone: '12345', waba: '919000000000' } }),
  ]);
  hashes.set(keys.batch(BATCH).latency, { '84': '9', '120': '1' });
  const reportsDir = mkdtempSync(join(dir, 'r-'));
  const summaryJson = join(reportsDir, BATCH, 'summary.json');
  const steps: string[] = [];
  const noteReport = (): void => {
    if (!steps.includes('report') && existsSync(summaryJson)) steps.push('report');
  };
  const { expire, apply } = batches;
  batches.expire = async (...args) => {
    noteReport();
    steps.push('expire');
    return expire(...args);
  };
  batches.apply = async (...args) => {
    noteReport();
    steps.push(`apply:${args[1]}`);
    return apply(...args);
  };
  const finished: ReportSummary[] = [];
  const { logger, lines } = memoryLogger();
  const deps: FinalizeDeps = {
    redis,
    keys,
    batches,
    results,
    audit: fakeAuditStore(),
    logger,
    reportsDir,
    resultsTtlDays: TTL_DAYS,
    onFinished:
      options.hook ??
      (async (summary) => {
        steps.push('hook');
        finished.push(summary);
      }),
  };
  return { run: makeFinalizeProcessor(deps), batches, reportsDir, finished, logs: lines, steps };
}

describe('finalize processor: the final status', () => {
  const CASES: readonly { name: string; status: BatchStatus; cancelled: number; returns: BatchStatus; transition: string }[] = [
    { name: 'finalizing, nothing cancelled', status: Status.finalizing, cancelled: 0, returns: Status.finished, transition: 'finish' },
    { name: 'finalizing, some chats cancelled', status: Status.finalizing, cancelled: 3, returns: Status.cancelled, transition: 'finishCancelled' },
    { name: 'finalizing, every chat cancelled', status: Status.finalizing, cancelled: 10, returns: Status.cancelled, transition: 'finishCancelled' },
    // Re-delivered (or swept) after it already finished: the same report again, the status stays.
    { name: 're-delivered after finished', status: Status.finished, cancelled: 0, returns: Status.finished, transition: 'finish' },
    { name: 're-delivered after cancelled', status: Status.cancelled, cancelled: 2, returns: Status.cancelled, transition: 'finishCancelled' },
  ];

  it.each(CASES)('$name → $returns (transition $transition)', async ({ status, cancelled, returns, transition }) => {
    const r = rig({ status, cancelled });
    expect(await r.run(job())).toBe(returns);
    expect(r.batches.records.get(BATCH)!.status).toBe(returns);
    // Report first, then retention, then the status (whoever sees the final status can read the report).
    expect(r.steps).toEqual(['report', 'expire', `apply:${transition}`, 'hook']);
    expect(r.batches.ttls.get(BATCH)).toBe((TTL_DAYS * DAY) / 1000);
    const summary = JSON.parse(readFileSync(join(r.reportsDir, BATCH, 'summary.json'), 'utf8')) as ReportSummary;
    expect(summary).toMatchObject({
      batchId: BATCH,
      status: returns,
      counts: { valid: 10, cancelled },
      rateLimited: 2,
      attempts: { total: 12, retries: 12 - (10 - cancelled) },
    });
    expect(summary.latencyMs).toEqual({ p50: 84, p95: 120, p99: 120 });
    expect(readFileSync(join(r.reportsDir, BATCH, 'rejected.csv'), 'utf8')).toBe(
      'line,column,value,reason,phone,waba\r\n3,phone,12345,too short,12345,919000000000\r\n',
    );
    expect(readFileSync(join(r.reportsDir, BATCH, 'failed.csv'), 'utf8')).toBe('phone,waba,status,error\r\n');
    expect(r.finished).toEqual([summary]);
    expect(r.logs.filter((l) => l.msg === 'batch finished')).toEqual([expect.objectContaining({ level: LEVEL.info, batchId: BATCH, status: returns })]);
  });

  it('a batch not yet complete (still running) is left alone: no report, no retention clock, no hook', async () => {
    const r = rig({ status: Status.running });
    expect(await r.run(job())).toBe('not-complete');
    expect(r.batches.records.get(BATCH)!.status).toBe(Status.running);
    expect(r.steps).toEqual([]);
  });

  it('a batch that is gone (expired or removed) → "gone": no report, no TTL, no hook', async () => {
    const r = rig({ exists: false });
    expect(await r.run(job())).toBe('gone');
    expect(existsSync(join(r.reportsDir, BATCH))).toBe(false);
    expect(r.steps).toEqual([]);
    expect(r.finished).toEqual([]);
  });

  it('a failing finish hook is logged, not thrown: the batch is finished all the same', async () => {
    const r = rig({
      hook: async () => {
        throw new Error('webhook down');
      },
    });
    expect(await r.run(job())).toBe(Status.finished);
    expect(r.batches.records.get(BATCH)!.status).toBe(Status.finished);
    expect(r.logs.filter((l) => l.level === LEVEL.warn)).toEqual([
      expect.objectContaining({ batchId: BATCH, err: 'Error: webhook down', msg: 'finish hook failed' }),
    ]);
  });

  it('runs twice to the same report (idempotent re-delivery)', async () => {
    const r = rig({ cancelled: 1 });
    expect(await r.run(job())).toBe(Status.cancelled);
    const first = readFileSync(join(r.reportsDir, BATCH, 'summary.md'), 'utf8');
    expect(await r.run(job())).toBe(Status.cancelled);
    expect(readFileSync(join(r.reportsDir, BATCH, 'summary.md'), 'utf8')).toBe(first);
    expect(r.finished).toHaveLength(2);
  });
});
