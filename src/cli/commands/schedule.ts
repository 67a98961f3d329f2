/**
 * `schedule set|show|remove|run-now [name]`: nightly cleanup without anyone preparing a CSV. The schedule lives
 * in Redis (schedule-store.ts); `worker` processes run its ticks (jobs/nightly.ts). `run-now` runs it from
 * here, with the same overlap rule, and leaves the chats to the workers like `upload`.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';

import { makeApiClient } from '../../execution/api-client.js';
import type { BatchRecord } from '../../store/batch-store.js';
import type { Flags } from '../args.js';
import { describeRule } from '../../schedule/rule.js';
import { requireApiKey } from '../../config/config.js';
import type { Context } from '../../runtime/context.js';
import { UsageError } from '../../domain/errors.js';
import { makePacer } from '../../execution/pacer.js';
import { writeReport } from '../../report/report.js';
import { buildDefinition, checkScheduleName, DEFAULT_SCHEDULE } from '../../schedule/definition.js';
import { makeScheduleStore, type ScheduleDefinition, type ScheduleRun, type ScheduleStore } from '../../schedule/store.js';
import { busyReason, localTime, recordSkip, type RunResult, runSchedule } from '../../schedule/run.js';
import { dryRunView, renderDryRun } from '../../app/dry-run.js';
import { configFrom, exitCodeFor, type Io, openContext, waitForBatch } from './common.js';
import { describeBatch } from '../../app/views.js';

type Sub = (name: string | undefined, ctx: Context, schedules: ScheduleStore, flags: Flags, io: Io) => Promise<number>;

/** How often `run-now` with --overlap wait re-checks the previous run. */
const WAIT_POLL_MS = 2000;

async function requireSchedule(schedules: ScheduleStore, name: string): Promise<ScheduleDefinition> {
  const definition = await schedules.get(checkScheduleName(name));
  if (!definition) {
    const names = (await schedules.list()).map((d) => d.name);
    throw new UsageError(`no schedule named "${name}"${names.length ? ` (schedules: ${names.join(', ')})` : ' (create one with `bulk-unassign schedule set`)'}`);
  }
  return definition;
}

function describeSources(def: ScheduleDefinition): string[] {
  const lines: string[] = [];
  if (def.query) lines.push(`chats  ${describeRule(def.query)}`);
  if (def.inbox) lines.push(`inbox  ${def.inbox.dir}/*.csv → processed/ or rejected/${def.inbox.defaultWaba ? ` (waba ${def.inbox.defaultWaba} for files without the column)` : ''}`);
  return lines;
}

function describeRun(run: ScheduleRun, tz: string): string {
  const batches = run.batchIds.length ? ` [${run.batchIds.join(', ')}]` : '';
  return `${localTime(run.tick, tz)}${run.manual ? ' (run-now)' : ''}  ${run.outcome}${batches}  ${run.message}`;
}

async function describeSchedule(def: ScheduleDefinition, schedules: ScheduleStore, now = Date.now()): Promise<string> {
  const next = await schedules.nextRun(def.name);
  const runs = await schedules.runs(def.name, 5);
  const inMinutes = next === undefined ? '' : ` (in ${Math.max(0, Math.round((next - now) / 60_000))} min)`;
  return [
    `schedule ${def.name}`,
    `  when     ${def.cron} (${def.tz}); next run ${next === undefined ? 'not planned: run `schedule set` again' : `${localTime(next, def.tz)}${inMinutes}`}`,
    ...describeSources(def).map((l, i) => `  ${i === 0 ? 'sources' : '       '}  ${l}`),
    `  overlap  ${def.overlap} (when the previous scheduled batch is still running)`,
    ...(runs.length ? ['  last runs (newest first):', ...runs.map((r) => `    ${describeRun(r, def.tz)}`)] : ['  no runs yet']),
  ].join('\n');
}

const set: Sub = async (name, ctx, schedules, flags, io) => {
  const scheduleName = name ?? DEFAULT_SCHEDULE;
  const existing = await schedules.get(checkScheduleName(scheduleName));
  const definition = buildDefinition(
    scheduleName,
    { cron: flags.cron, tz: flags.tz, overlap: flags.overlap, inbox: flags.inbox, chatStatus: flags['chat-status'], idleHours: flags['idle-hours'], tag: flags.tag, agent: flags.agent, waba: flags.waba },
    { cwd: io.cwd, now: Date.now(), defaultTz: Intl.DateTimeFormat().resolvedOptions().timeZone, defaultCountry: ctx.config.defaultCountry, existing },
  );
  if (definition.inbox) {
    const info = await stat(definition.inbox.dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new UsageError(`--inbox ${definition.inbox.dir}: no such folder (create it first; workers read it at the same path)`);
  }
  try {
    await schedules.save(definition);
  } catch (error) {
    // BullMQ's cron parser is the judge of the pattern; its message says which field is wrong.
    throw new UsageError(`--cron ${JSON.stringify(definition.cron)}: ${(error as Error).message}`);
  }
  io.out(flags.json ? JSON.stringify({ ...definition, nextRun: await schedules.nextRun(scheduleName) }, null, 2) : `${existing ? 'updated' : 'created'} ${await describeSchedule(definition, schedules)}\n  runs on \`bulk-unassign worker\` processes (start at least one)`);
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

const remove: Sub = async (name, _ctx, schedules, flags, io) => {
  const scheduleName = checkScheduleName(name ?? DEFAULT_SCHEDULE);
  if (!(await schedules.remove(scheduleName))) throw new UsageError(`no schedule named "${scheduleName}"`);
  io.out(flags.json ? JSON.stringify({ removed: scheduleName }) : `removed schedule ${scheduleName} (its batches and reports stay)`);
  return 0;
};

async function printDryRuns(ctx: Context, batches: readonly BatchRecord[], io: Io): Promise<void> {
  for (const batch of batches) {
    await writeReport(ctx, batch, ctx.config.reportsDir);
    await ctx.batches.expire(batch.id, ctx.config.resultsTtlDays * 86_400);
    io.out(`${batch.name}:\n${renderDryRun(await dryRunView(ctx, batch), ctx.config.reportsDir)}`);
  }
}

const runNow: Sub = async (name, ctx, schedules, flags, io) => {
  const definition = await requireSchedule(schedules, name ?? DEFAULT_SCHEDULE);
  const { config } = ctx;
  const dryRun = flags['dry-run'] === true;
  const api = makeApiClient({ baseUrl: config.baseUrl, apiKey: definition.query ? requireApiKey(config) : (config.apiKey ?? ''), requestTimeoutMs: config.requestTimeoutMs });
  const pacer = makePacer(ctx.redis, ctx.keys, { max: config.rateLimitMax, durationMs: config.rateLimitDurationMs });
  const deps = { ...ctx, schedules, api, pace: () => pacer.acquire(), rateLimit: (ms: number) => pacer.pause(ms) };
  const owner = `run-now-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tick = Date.now();
  try {
    let result: RunResult = await runSchedule(deps, { definition, tick, owner, manual: true, dryRun });
    let waited: { since: number; blockedBy: string } | undefined;
    while (result.kind === 'busy' && definition.overlap === 'wait') {
      if (!waited) io.err(`waiting: ${result.blockedBy} (--overlap wait; Ctrl-C gives up, nothing started)`);
      waited ??= { since: Date.now(), blockedBy: result.blockedBy };
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
      if ((await busyReason(deps, definition.name)) === '') result = await runSchedule(deps, { definition, tick, owner, manual: true, waited });
    }
    if (result.kind === 'busy') {
      const run = await recordSkip(deps, { definition, tick, owner, manual: true }, result);
      io.out(flags.json ? JSON.stringify({ run, batches: [] }, null, 2) : `run-now ${run.message}`);
      return 0;
    }
    if (dryRun) {
      if (flags.json) io.out(JSON.stringify({ run: result.run, batches: result.batches }, null, 2));
      else {
        io.out(`dry run of schedule ${definition.name}: ${result.run.message || 'no sources read'}`);
        await printDryRuns(ctx, result.batches, io);
      }
      return 0;
    }
    const batches = flags.wait ? await Promise.all(result.batches.map((b) => waitForBatch(ctx, b.id, flags))) : result.batches;
    if (flags.json) io.out(JSON.stringify({ run: result.run, batches }, null, 2));
    else {
      io.out(`run-now of schedule ${definition.name}: ${result.run.outcome} — ${result.run.message}`);
      for (const b of batches) io.out(describeBatch(b));
      if (!flags.wait && batches.length) io.out('  enqueued for workers: follow with `bulk-unassign status <batchId> --watch`');
    }
    // A source that could not be read (GET /chats refused, inbox folder gone) stopped the run: 3, like a stopped batch.
    return batches.reduce((code, b) => Math.max(code, exitCodeFor(b)), result.run.outcome === 'failed' ? 3 : 0);
  } finally {
    api.close();
  }
};

const SUBCOMMANDS: Readonly<Record<string, Sub>> = { set, show, remove, 'run-now': runNow };

/** `schedule <set|show|remove|run-now> [name]`. */
export async function cmdSchedule(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  const [sub, name, extra] = args;
  const run = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!run) throw new UsageError(`\`schedule\` needs one of ${Object.keys(SUBCOMMANDS).join(', ')}: bulk-unassign schedule set --cron "0 2 * * *" --chat-status done`);
  if (extra !== undefined) throw new UsageError(`\`schedule ${sub}\` takes at most one schedule name, got also ${JSON.stringify(extra)}`);
  const ctx = await openContext(configFrom(flags, io));
  try {
    return await run(name, ctx, makeScheduleStore(ctx.redis, ctx.keys, ctx.queue), flags, io);
  } finally {
    await ctx.close();
  }
}
