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
import { uploadCsv } from '../../app/upload.js';
import { makeLogger } from '../../config/logger.js';
import { makeProgress } from '../progress.js';
import { assertRedisReachable, connectRedis } from '../../store/redis.js';
import { makeKeys } from '../../store/keys.js';
import { Status, WATCH_ENDS } from '../../domain/lifecycle.js';
import { probeRedisWrites, watchBatch } from '../../app/watch.js';
import { checkDataLayout } from '../../store/layout.js';
import { apiPauseOf, apiPauseText } from '../../app/views.js';
import { pausedUntil } from '../../execution/pacer.js';
import type { StartConsole } from '../../app/console-port.js';
import type { Actor } from '../../domain/actor.js';

export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** The job processors a worker started by this command runs (registered by the entry point). */
  readonly jobs: JobTable;
  /** Starts the web console (`serve`, `demo --console`; handed over by the entry point). */
  readonly startConsole: StartConsole;
}

export function configFrom(flags: Flags, io: Io): ResolvedConfig {
  return resolveConfig(flagsToOptions(flags), io.env, readDotEnv(io.cwd));
}

/** Opens Redis (failing fast with a hint when it is not there) and everything on top of it. */
export async function openContext(config: ResolvedConfig): Promise<Context> {
  await assertRedisReachable(config.redisUrl);
  // The layout is checked on a connection of its own, before the context exists: BullMQ's Queue writes its
  // metadata under the prefix as soon as it connects, and data of another layout must not be touched at all.
  const probe = connectRedis(config.redisUrl, 'bulk-unassign:layout', { cluster: config.redisCluster });
  try {
    await checkDataLayout(probe, makeKeys(config.queuePrefix));
  } finally {
    probe.disconnect();
  }
  // The CLI's own logs are for problems only, unless LOG_LEVEL says otherwise; the progress display tells the story.
  return makeContext(config, makeLogger(config.logLevelExplicit ? config.logLevel : 'warn'));
}

/** Exit code of a `run` / `upload` whose batch was held for approval (the brake): nothing was sent. */
export const EXIT_HELD = 4;

/** 0 all unassigned, 1 failures or rejections, 3 stopped / cancelled, 4 held for approval. (2 is raised as an error before a batch exists.) */
export function exitCodeFor(batch: BatchRecord): number {
  if (batch.status === Status.awaitingApproval) return EXIT_HELD;
  if (batch.status === Status.stopped || batch.status === Status.cancelled) return 3;
  if (batch.counts.failed > 0 || batch.counts.rejected > 0) return 1;
  return 0;
}

/** How often a waiting CLI checks that Redis accepts writes. */
const WRITE_PROBE_MS = 2000;

/** Watches the batch until nothing more is to be waited for (or `signal` aborts), feeding a progress display. */
export async function waitForBatch(ctx: Context, batchId: string, flags: Flags, signal?: AbortSignal): Promise<BatchRecord> {
  const progress = makeProgress(`batch ${batchId}`, process.stderr, flags.quiet === true || flags.json === true);
  let last: BatchRecord | undefined;
  let lastError = '';
  const onReadError = (error: Error): void => {
    if (error.message !== lastError) process.stderr.write(`cannot read batch ${batchId}: ${error.message} (retrying)\n`);
    lastError = error.message;
  };
  // A batch standing still because Redis refuses writes (or does not answer) must say so, not look frozen.
  let problem: string | undefined;
  const probe = setInterval(() => {
    void probeRedisWrites(ctx.redis, ctx.keys.writeProbe).then((now) => {
      if (now !== problem) process.stderr.write(now ? `${now}; waiting for it (no chat is failed for this)\n` : 'Redis accepts writes again: going on\n');
      problem = now;
    });
  }, WRITE_PROBE_MS);
  try {
    for await (const batch of watchBatch(ctx.batches, batchId, { intervalMs: 250, onReadError, ...(signal ? { signal } : {}) })) {
      if (!batch) break;
      last = batch;
      lastError = '';
      const { succeeded, failed } = batch.counts;
      // A batch waiting out the API's 429s says until when, instead of standing still in silence.
      const paused = apiPauseText(apiPauseOf(batch, Date.now(), await pausedUntil(ctx.redis, ctx.keys).catch(() => undefined)));
      progress.update(
        batch.done,
        batch.counts.valid,
        `${succeeded} ok, ${failed} failed${batch.rateLimited ? `, ${batch.rateLimited}×429` : ''}${paused ? `, ${paused}` : ''}`,
      );
    }
  } finally {
    clearInterval(probe);
    progress.stop();
  }
  // Aborted before the first read, or the record is gone: what `require` says is the answer.
  return last && (WATCH_ENDS.has(last.status) || signal?.aborted) ? last : ctx.batches.require(batchId);
}

/** Reads a CSV into a new batch (and enqueues it unless --dry-run), with a progress display. */
export async function ingestFile(ctx: Context, file: string, flags: Flags, actor: Actor): Promise<BatchRecord> {
  const progress = makeProgress(`reading ${basename(file)}`, process.stderr, flags.quiet === true || flags.json === true);
  try {
    return await uploadCsv(ctx, {
      file,
      actor,
      ...(flags.name ? { name: flags.name } : {}),
      ...(flags.waba ? { waba: flags.waba } : {}),
      force: flags.force === true,
      dryRun: flags['dry-run'] === true,
      approve: flags.approve === true,
      captureAssignees: flags['capture-assignees'] === true,
      onProgress: (p) => progress.update(p.phase === 'reading' ? p.rows : p.enqueued, p.phase === 'reading' ? undefined : p.valid, p.phase),
    });
  } finally {
    progress.stop();
  }
}
