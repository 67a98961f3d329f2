/**
 * `schedule set|show|remove|run-now [name]`: nightly cleanup without anyone preparing a CSV. The schedule lives
 * in Redis (schedule/store.ts); `worker` processes run its ticks (jobs/nightly.ts). `run-now` runs it from
 * here, with the same overlap rule, and leaves the chats to the workers like `upload`.
 */
import type { BatchRecord } from '../../store/batch-store.js';
import type { Flags } from '../args.js';
import type { Context } from '../../runtime/context.js';
import { UsageError } from '../../domain/errors.js';
import { DEFAULT_SCHEDULE } from '../../schedule/definition.js';
import type { ScheduleStore } from '../../schedule/store.js';
import { dryRunView, renderDryRun } from '../../app/dry-run.js';
import { describeSchedule, removeSchedule, requireSchedule, runScheduleNow, scheduleStoreOf, setSchedule } from '../../app/schedules.js';
import { configFrom, exitCodeFor, type Io, openContext, waitForBatch } from './common.js';
import { describeBatch } from '../../app/views.js';
import { cliActor } from '../../config/actor.js';

type Sub = (name: string | undefined, ctx: Context, schedules: ScheduleStore, flags: Flags, io: Io) => Promise<number>;

const set: Sub = async (name, ctx, schedules, flags, io) => {
  const scheduleName = name ?? DEFAULT_SCHEDULE;
  const input = {
    cron: flags.cron,
    tz: flags.tz,
    overlap: flags.overlap,
    inbox: flags.inbox,
    chatStatus: flags['chat-status'],
    idleHours: flags['idle-hours'],
    tag: flags.tag,
    agent: flags.agent,
    waba: flags.waba,
    maxChats: flags['max-chats'],
    maxShare: flags['max-share'],
    captureAssignees: flags['capture-assignees'] === true,
  };
  const { definition, created } = await setSchedule(ctx, schedules, scheduleName, input, { cwd: io.cwd }, cliActor(io.env));
  io.out(
    flags.json
      ? JSON.stringify({ ...definition, nextRun: await schedules.nextRun(scheduleName) }, null, 2)
      : `${created ? 'created' : 'updated'} ${await describeSchedule(definition, schedules)}\n  runs on \`bulk-unassign worker\` processes (start at least one)`,
  );
  return 0;
};

const show: Sub = async (name, _ctx, schedules, flags, io) => {
  const definitions = name === undefined ? await schedules.list() : [await requireSchedule(schedules, name)];
  if (flags.json) {
    const out = [];
    for (const d of definitions) out.push({ ...d, nextRun: (await schedules.nextRun(d.name)) ?? null, runs: await schedules.runs(d.name) });
    io.out(JSON.stringify(name === undefined ? out : out[0], null, 2));
    return 0;
  }
  if (definitions.length === 0) {
    io.out('no schedules (create one with `bulk-unassign schedule set --cron "0 2 * * *" --chat-status done --idle-hours 12`)');
    return 0;
  }
  const texts = [];
  for (const d of definitions) texts.push(await describeSchedule(d, schedules));
  io.out(texts.join('\n\n'));
  return 0;
};

const remove: Sub = async (name, ctx, schedules, flags, io) => {
  const scheduleName = await removeSchedule(ctx, schedules, name ?? DEFAULT_SCHEDULE, cliActor(io.env));
  io.out(flags.json ? JSON.stringify({ removed: scheduleName }) : `removed schedule ${scheduleName} (its batches and reports stay)`);
  return 0;
};

/** Dry-run batches come back with their reports written (runScheduleNow): show what each would send. */
async function printDryRuns(ctx: Context, batches: readonly BatchRecord[], io: Io): Promise<void> {
  for (const batch of batches) io.out(`${batch.name}:\n${renderDryRun(await dryRunView(ctx, batch), ctx.config.reportsDir)}`);
}

const runNow: Sub = async (name, ctx, schedules, flags, io) => {
  const dryRun = flags['dry-run'] === true;
  const result = await runScheduleNow(ctx, schedules, name ?? DEFAULT_SCHEDULE, {
    actor: cliActor(io.env),
    dryRun,
    onWait: (blockedBy) => io.err(`waiting: ${blockedBy} (--overlap wait; Ctrl-C gives up, nothing started)`),
  });
  const { definition, run } = result;
  if (result.skipped) {
    io.out(flags.json ? JSON.stringify({ run, batches: [] }, null, 2) : `run-now ${run.message}`);
    return 0;
  }
  if (dryRun) {
    if (flags.json) io.out(JSON.stringify({ run, batches: result.batches }, null, 2));
    else {
      io.out(`dry run of schedule ${definition.name}: ${run.message || 'no sources read'}`);
      await printDryRuns(ctx, result.batches, io);
    }
    return 0;
  }
  const batches = flags.wait ? await Promise.all(result.batches.map((b) => waitForBatch(ctx, b.id, flags))) : result.batches;
  if (flags.json) io.out(JSON.stringify({ run, batches }, null, 2));
  else {
    io.out(`run-now of schedule ${definition.name}: ${run.outcome} — ${run.message}`);
    for (const b of batches) io.out(describeBatch(b));
    if (!flags.wait && batches.length) io.out('  enqueued for workers: follow with `bulk-unassign status <batchId> --watch`');
  }
  // A source that could not be read (GET /chats refused, inbox folder gone) stopped the run: 3, like a stopped batch.
  return batches.reduce((code, b) => Math.max(code, exitCodeFor(b)), run.outcome === 'failed' ? 3 : 0);
};

const SUBCOMMANDS: Readonly<Record<string, Sub>> = { set, show, remove, 'run-now': runNow };

/** `schedule <set|show|remove|run-now> [name]`. */
export async function cmdSchedule(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const [sub, name, extra] = args;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run)
    throw new UsageError(`\`schedule\` needs one of ${Object.keys(SUBCOMMANDS).join(', ')}: bulk-unassign schedule set --cron "0 2 * * *" --chat-status done`);
  if (extra !== undefined) throw new UsageError(`\`schedule ${sub}\` takes at most one schedule name, got also ${JSON.stringify(extra)}`);
  const ctx = await openContext(configFrom(flags, io));
  try {
    return await run(name, ctx, scheduleStoreOf(ctx), flags, io);
  } finally {
    await ctx.close();
  }
}
