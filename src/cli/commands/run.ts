/**
 * `run`, `upload` and `worker`: getting chats onto the queue and through the API.
 */
import type { BatchRecord } from '../../store/batch-store.js';
import type { Flags } from '../args.js';
import type { Context } from '../../runtime/context.js';
import { requireApiKey } from '../../config/config.js';
import { UsageError } from '../../domain/errors.js';
import { registerShutdown } from '../../runtime/shutdown.js';
import { startWorker } from '../../execution/worker.js';
import { completeDryRun, dryRunView, renderDryRun } from '../../app/dry-run.js';
import { describeBatch } from '../../app/views.js';
import { REPORT_NOT_WRITTEN } from '../../report/report.js';
import { configFrom, exitCodeFor, ingestFile, type Io, openContext, waitForBatch } from './common.js';
import { FINAL, Status } from '../../domain/lifecycle.js';
import { cliActor } from '../../config/actor.js';

function fileArg(args: readonly string[], command: string): string {
  const file = args[0];
  if (!file) throw new UsageError(`\`${command}\` needs a CSV file: bulk-unassign ${command} <file.csv>`);
  return file;
}

function printResult(io: Io, flags: Flags, batch: Awaited<ReturnType<typeof waitForBatch>>, reportsDir: string): void {
  if (flags.json) io.out(JSON.stringify(batch, null, 2));
  else {
    io.out(describeBatch(batch));
    if (FINAL.has(batch.status) && !batch.notes.some((n) => n.startsWith(REPORT_NOT_WRITTEN))) io.out(`  report: ${reportsDir}/${batch.id}/summary.md`);
    if (batch.status === Status.stopped) io.out(`  resume with: bulk-unassign resume ${batch.id}`);
  }
}

/** `run <csv>`: ingest + in-process workers + wait + report. */
export async function cmdRun(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const file = fileArg(args, 'run');
  const config = configFrom(flags, io);
  if (!flags['dry-run']) requireApiKey(config);
  const ctx = await openContext(config);
  try {
    const batch = await ingestFile(ctx, file, flags, cliActor(io.env));
    if (batch.status === Status.dryRun) return await finishDryRun(ctx, batch, flags, io);
    if (batch.status === Status.awaitingApproval) return held(io, flags, batch);
    return await processHere(ctx, batch, flags, io);
  } finally {
    await ctx.close();
  }
}

/**
 * The one-machine path after a batch is enqueued: in-process workers until it ends, then the result.
 * SIGINT/SIGTERM leave the batch queued for any `worker` (nothing is lost or counted twice).
 */
export async function processHere(ctx: Context, batch: BatchRecord, flags: Flags, io: Io): Promise<number> {
  const running = startWorker(ctx, io.jobs);
  const interrupted = new AbortController();
  registerShutdown({
    graceMs: ctx.config.requestTimeoutMs + 5000,
    log: io.err,
    forcedExitCode: 3,
    onSignal: async () => interrupted.abort(),
  });
  const done = await waitForBatch(ctx, batch.id, flags, interrupted.signal);
  await running.close();
  if (interrupted.signal.aborted && done.status !== Status.finished) {
    io.err(`interrupted: batch ${batch.id} keeps its place in the queue; \`bulk-unassign worker\` finishes it, \`bulk-unassign cancel ${batch.id}\` drops it`);
    return 3;
  }
  printResult(io, flags, done, ctx.config.reportsDir);
  return reportMissing(done, io) ? 2 : exitCodeFor(done);
}

/**
 * The brake held the batch (more chats than MAX_BATCH_CHATS): nothing was sent, and this command ends here with
 * EXIT_HELD, saying how to approve or reject it. Whoever approves it later, any worker runs it.
 */
function held(io: Io, flags: Flags, batch: BatchRecord): number {
  if (flags.json) io.out(JSON.stringify(batch, null, 2));
  else io.out(describeBatch(batch));
  io.err(
    `bulk-unassign: batch ${batch.id} is held for approval and nothing was sent: approve it with \`bulk-unassign approve ${batch.id}\` ` +
      `(then \`bulk-unassign worker\` or a running worker processes it), or reject it with \`bulk-unassign reject ${batch.id}\`; ` +
      'pass --approve to run a file this large without holding it',
  );
  return exitCodeFor(batch);
}

/** A batch that finished without its report (the folder refused it) says so, naming the path: exit 2. */
function reportMissing(batch: BatchRecord, io: Io): boolean {
  const note = batch.notes.find((n) => n.startsWith(REPORT_NOT_WRITTEN));
  if (!note || !FINAL.has(batch.status)) return false;
  io.err(`bulk-unassign: batch ${batch.id} ${batch.status}, but its report could not be written: ${note.slice(REPORT_NOT_WRITTEN.length + 2)}`);
  return true;
}

export async function finishDryRun(ctx: Context, batch: BatchRecord, flags: Flags, io: Io): Promise<number> {
  await completeDryRun(ctx, batch);
  const view = await dryRunView(ctx, batch);
  io.out(flags.json ? JSON.stringify(view, null, 2) : renderDryRun(view, ctx.config.reportsDir));
  return exitCodeFor(batch);
}

/** `upload <csv> [--wait]`: ingest for workers elsewhere. */
export async function cmdUpload(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const file = fileArg(args, 'upload');
  const config = configFrom(flags, io);
  const ctx = await openContext(config);
  try {
    const batch = await ingestFile(ctx, file, flags, cliActor(io.env));
    if (batch.status === Status.dryRun) return await finishDryRun(ctx, batch, flags, io);
    if (batch.status === Status.awaitingApproval) return held(io, flags, batch);
    if (!flags.wait) {
      io.out(
        flags.json
          ? JSON.stringify(batch, null, 2)
          : `${describeBatch(batch)}\n  enqueued for workers: follow with \`bulk-unassign status ${batch.id} --watch\``,
      );
      return 0;
    }
    const done = await waitForBatch(ctx, batch.id, flags);
    printResult(io, flags, done, config.reportsDir);
    return reportMissing(done, io) ? 2 : exitCodeFor(done);
  } finally {
    await ctx.close();
  }
}

/** `worker`: process jobs until SIGINT/SIGTERM. */
export async function cmdWorker(_args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const config = configFrom(flags, io);
  requireApiKey(config);
  const ctx = await openContext(config);
  const running = startWorker(ctx, io.jobs);
  io.err(
    `worker started: ${config.workerConcurrency} at a time, limit ${config.rateLimitMax} per ${config.rateLimitDurationMs} ms (global), reports in ${config.reportsDir}`,
  );
  await new Promise<void>((resolve) => {
    registerShutdown({
      graceMs: config.requestTimeoutMs + 5000,
      log: io.err,
      onSignal: async () => {
        await running.close();
        await ctx.close();
        resolve();
      },
    });
  });
  io.err('worker stopped');
  return 0;
}
