/**
 * What several commands share: opening the context, printing a batch, waiting for one, its exit code.
 */
import { basename } from 'node:path';

import type { BatchRecord } from '../../store/batch-store.js';
import type { Flags } from '../args.js';
import type { JobTable } from '../../execution/job-table.js';
import { flagsToOptions } from '../args.js';
import { readDotEnv, resolveConfig, type ResolvedConfig } from '../../config/config.js';
import type { Context } from '../../runtime/context.js';
import { makeContext } from '../../runtime/context.js';
import { openConfiguredCsv } from '../../ingest/csv-source.js';
import { ingest } from '../../ingest/enqueue.js';
import { makeLogger } from '../../config/logger.js';
import { makeProgress } from '../progress.js';
import { assertRedisReachable } from '../../store/redis.js';
import { Status, WATCH_ENDS } from '../../domain/lifecycle.js';

export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** The job processors a worker started by this command runs (registered by the entry point). */
  readonly jobs: JobTable;
}

export function configFrom(flags: Flags, io: Io): ResolvedConfig {
  return resolveConfig(flagsToOptions(flags), io.env, readDotEnv(io.cwd));
}

/** Opens Redis (failing fast with a hint when it is not there) and everything on top of it. */
export async function openContext(config: ResolvedConfig): Promise<Context> {
  await assertRedisReachable(config.redisUrl);
  // The CLI's own logs are for problems only; the progress display tells the story.
  return makeContext(config, makeLogger(config.logLevel === 'info' ? 'warn' : config.logLevel));
}

/** 0 all unassigned, 1 failures or rejections, 3 stopped / cancelled. (2 is raised as an error before a batch exists.) */
export function exitCodeFor(batch: BatchRecord): number {
  if (batch.status === Status.stopped || batch.status === Status.cancelled) return 3;
  if (batch.counts.failed > 0 || batch.counts.rejected > 0) return 1;
  return 0;
}

/** Polls the batch record until it reaches a terminal status, feeding a progress display. */
export async function waitForBatch(ctx: Context, batchId: string, flags: Flags, signal?: AbortSignal): Promise<BatchRecord> {
  const progress = makeProgress(`batch ${batchId}`, process.stderr, flags.quiet === true || flags.json === true);
  try {
    for (;;) {
      const batch = await ctx.batches.require(batchId);
      const { succeeded, failed } = batch.counts;
      progress.update(batch.done, batch.counts.valid, `${succeeded} ok, ${failed} failed${batch.rateLimited ? `, ${batch.rateLimited}×429` : ''}`);
      if (WATCH_ENDS.has(batch.status) || signal?.aborted) return batch;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    progress.stop();
  }
}

/** Reads a CSV into a new batch (and enqueues it unless --dry-run). */
export async function ingestFile(ctx: Context, file: string, flags: Flags): Promise<BatchRecord> {
  const source = await openConfiguredCsv(ctx.config, file, flags.waba);
  const progress = makeProgress(`reading ${basename(file)}`, process.stderr, flags.quiet === true || flags.json === true);
  try {
    return await ingest(ctx, source, {
      batch: { kind: 'csv', source: basename(file), ...(flags.name ? { name: flags.name } : {}) },
      dryRun: flags['dry-run'] === true,
      force: flags.force === true,
      duplicateWindowHours: ctx.config.duplicateWindowHours,
      onProgress: (p) => progress.update(p.phase === 'reading' ? p.rows : p.enqueued, p.phase === 'reading' ? p.rows : p.valid, p.phase),
    });
  } finally {
    progress.stop();
  }
}

/** One-paragraph human summary of a batch. */
export function describeBatch(batch: BatchRecord): string {
  const c = batch.counts;
  const lines = [
    `batch ${batch.id} (${batch.name}) — ${batch.status}${batch.reason ? `: ${batch.reason}` : ''}`,
    `  rows ${c.rows} = valid ${c.valid} + rejected ${c.rejected} + duplicates ${c.duplicates}`,
    `  valid ${c.valid}: succeeded ${c.succeeded}, failed ${c.failed}, cancelled ${c.cancelled}, pending ${Math.max(0, c.valid - batch.done)}`,
  ];
  const top = Object.entries(batch.reasons).sort((a, b) => b[1] - a[1]).slice(0, 5);
  if (top.length > 0) lines.push('  top failure reasons:', ...top.map(([r, n]) => `    ${String(n).padStart(6)}  ${r}`));
  if (batch.parent) lines.push(`  rerun of ${batch.parent}`);
  if (batch.children.length) lines.push(`  reruns: ${batch.children.join(', ')}`);
  return lines.join('\n');
}
