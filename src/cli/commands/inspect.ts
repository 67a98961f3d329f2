/**
 * `status`, `batches`, `report`: looking at batches.
 */
import type { BatchRecord } from '../../store/batch-store.js';
import type { Flags } from '../args.js';
import { UsageError } from '../../domain/errors.js';
import { writeReport } from '../../report/report.js';
import { configFrom, type Io, openContext } from './common.js';
import { apiPauseOf, apiPauseText, apiRateText, type ApiRateView, describeBatch, rateAndEta, readApiRate } from '../../app/views.js';
import { pausedUntil } from '../../execution/pacer.js';
import { BATCH_STATUSES, isBatchStatus, Status, WATCH_ENDS } from '../../domain/lifecycle.js';

/** The `batches` table's status column: as wide as the longest status, so every row lines up. */
const STATUS_WIDTH = Math.max(...BATCH_STATUSES.map((s) => s.length));

export function batchIdArg(args: readonly string[], command: string): string {
  const id = args[0];
  if (!id) throw new UsageError(`\`${command}\` needs a batch id: bulk-unassign ${command} <batchId> (ids: bulk-unassign batches)`);
  return id;
}

function statusText(batch: BatchRecord, pausedByApiUntil: number | null, apiRate: ApiRateView): string {
  const { ratePerSecond, etaSeconds } = rateAndEta(batch);
  const pct = batch.counts.valid ? Math.floor((100 * batch.done) / batch.counts.valid) : 100;
  const paused = apiPauseText(pausedByApiUntil);
  return `${describeBatch(batch)}\n  progress ${batch.done}/${batch.counts.valid} (${pct}%), ${ratePerSecond}/s${etaSeconds !== null ? `, ETA ${etaSeconds}s` : ''}${paused ? `\n  ${paused}` : ''}\n  ${apiRateText(apiRate)}`;
}

export async function cmdStatus(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const id = batchIdArg(args, 'status');
  const ctx = await openContext(configFrom(flags, io));
  try {
    for (;;) {
      const batch = await ctx.batches.require(id);
      const pausedByApiUntil = apiPauseOf(batch, Date.now(), await pausedUntil(ctx.redis, ctx.keys));
      const apiRate = await readApiRate(ctx.redis, ctx.keys, ctx.config);
      io.out(
        flags.json ? JSON.stringify({ ...batch, ...rateAndEta(batch), pausedByApiUntil, apiRate }, null, 2) : statusText(batch, pausedByApiUntil, apiRate),
      );
      if (!flags.watch || WATCH_ENDS.has(batch.status)) return 0;
      await new Promise((r) => setTimeout(r, 2000));
    }
  } finally {
    await ctx.close();
  }
}

export async function cmdBatches(_args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const ctx = await openContext(configFrom(flags, io));
  try {
    const limit = flags.limit ? Number(flags.limit) : 50;
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`Expected \`--limit\` to be an integer ≥ 1, got \`${flags.limit}\``);
    if (flags.status !== undefined && !isBatchStatus(flags.status))
      throw new UsageError(`Expected \`--status\` to be one of ${BATCH_STATUSES.join(', ')}, got \`${flags.status}\``);
    const all = await ctx.batches.list(flags.status ? 1000 : limit);
    const batches = (flags.status ? all.filter((b) => b.status === flags.status) : all).slice(0, limit);
    if (flags.json) {
      io.out(JSON.stringify(batches, null, 2));
      return 0;
    }
    if (batches.length === 0) {
      io.out('no batches');
      return 0;
    }
    io.out(
      [
        'id'.padEnd(24),
        'status'.padEnd(STATUS_WIDTH),
        'progress'.padStart(13),
        'ok'.padStart(7),
        'failed'.padStart(7),
        'rej'.padStart(5),
        '  created              name / source / parent',
      ].join(' '),
    );
    for (const b of batches) {
      const progress = `${b.done}/${b.counts.valid}`;
      // A rerun's source already names its parent ("rerun of <id> (file.csv)"): say it once.
      const parent = b.parent && !b.source.includes(b.parent) ? `rerun of ${b.parent}` : '';
      const meta = [b.name !== b.id ? b.name : '', b.source, parent].filter(Boolean).join(' · ');
      io.out(
        [
          b.id.padEnd(24),
          b.status.padEnd(STATUS_WIDTH),
          progress.padStart(13),
          String(b.counts.succeeded).padStart(7),
          String(b.counts.failed).padStart(7),
          String(b.counts.rejected).padStart(5),
          ` ${new Date(b.createdAt).toISOString().slice(0, 19)}Z  ${meta}`,
        ].join(' '),
      );
      // A held batch says why and what it would send, so the list alone is enough to decide on it.
      if (b.status === Status.awaitingApproval) {
        io.out(`${' '.repeat(25)}${b.reason}; would send ${b.sample.slice(0, 3).join(', ')}${b.sample.length > 3 ? ', …' : ''}`);
        io.out(`${' '.repeat(25)}approve: bulk-unassign approve ${b.id}    reject: bulk-unassign reject ${b.id}`);
      }
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function cmdReport(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const id = batchIdArg(args, 'report');
  const config = configFrom(flags, io);
  const ctx = await openContext(config);
  try {
    const batch = await ctx.batches.require(id);
    const summary = await writeReport(ctx, batch, config.reportsDir);
    io.out(
      flags.json
        ? JSON.stringify(summary, null, 2)
        : `report of ${id} (${batch.status}) written:\n${Object.values(summary.files)
            .map((f) => `  ${f}`)
            .join('\n')}`,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
