/**
 * Schedules as use cases: create or replace, show, remove, run now and preview (a dry run). The CLI's
 * `schedule set|show|remove|run-now` and the console's /api/schedules routes both call these, so a definition is
 * validated, saved and run the same way — and refused with the same messages — whichever door it came through.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';

import { makePacedApi } from '../execution/paced-api.js';
import type { BatchRecord } from '../store/batch-store.js';
import { requireApiKey } from '../config/config.js';
import type { Context } from '../runtime/context.js';
import { BatchStateError, UsageError } from '../domain/errors.js';
import { buildDefinition, checkScheduleName, DEFAULT_SCHEDULE, type ScheduleInput } from '../schedule/definition.js';
import { describeRule } from '../schedule/rule.js';
import { makeScheduleStore, type ScheduleDefinition, type ScheduleRun, type ScheduleStore } from '../schedule/store.js';
import { busyReason, localTime, recordSkip, type RunDeps, type RunResult, runSchedule } from '../schedule/run.js';
import type { InboxFileResult } from '../schedule/inbox.js';
import { completeDryRun, dryRunView, type DryRunView } from './dry-run.js';
import type { Actor } from '../domain/actor.js';

export { DEFAULT_SCHEDULE, type ScheduleInput };

export function scheduleStoreOf(ctx: Pick<Context, 'redis' | 'keys' | 'queue'>): ScheduleStore {
  return makeScheduleStore(ctx.redis, ctx.keys, ctx.queue);
}

/** The schedule of that name; a missing one is a UsageError naming the schedules there are. */
export async function requireSchedule(schedules: ScheduleStore, name: string): Promise<ScheduleDefinition> {
  const definition = await schedules.get(checkScheduleName(name));
  if (!definition) {
    const names = (await schedules.list()).map((d) => d.name);
    throw new UsageError(
      `no schedule named "${name}"${names.length ? ` (schedules: ${names.join(', ')})` : ' (create one with `bulk-unassign schedule set`)'}`,
    );
  }
  return definition;
}

/** One line per source, as `schedule show` prints them. */
export function describeSources(def: ScheduleDefinition): string[] {
  const lines: string[] = [];
  if (def.query) lines.push(`chats  ${describeRule(def.query)}`);
  if (def.inbox)
    lines.push(
      `inbox  ${def.inbox.dir}/*.csv → processed/ or rejected/${def.inbox.defaultWaba ? ` (waba ${def.inbox.defaultWaba} for files without the column)` : ''}` +
        (def.captureAssignees ? '; agents read before each unassign (--capture-assignees)' : ''),
    );
  return lines;
}

export function describeRun(run: ScheduleRun, tz: string): string {
  const batches = run.batchIds.length ? ` [${run.batchIds.join(', ')}]` : '';
  return `${localTime(run.tick, tz)}${run.manual ? ' (run-now)' : ''}  ${run.outcome}${batches}  ${run.message}`;
}

/** The text `schedule show` prints for one schedule. */
export async function describeSchedule(def: ScheduleDefinition, schedules: ScheduleStore, now = Date.now()): Promise<string> {
  const next = await schedules.nextRun(def.name);
  const runs = await schedules.runs(def.name, 5);
  const inMinutes = next === undefined ? '' : ` (in ${Math.max(0, Math.round((next - now) / 60_000))} min)`;
  return [
    `schedule ${def.name}`,
    `  when     ${def.cron} (${def.tz}); next run ${next === undefined ? 'not planned: run `schedule set` again' : `${localTime(next, def.tz)}${inMinutes}`}`,
    ...describeSources(def).map((l, i) => `  ${i === 0 ? 'sources' : '       '}  ${l}`),
    `  overlap  ${def.overlap} (when the previous scheduled batch is still running)`,
    `  brake    ${brakeText(def)}`,
    ...(runs.length ? ['  last runs (newest first):', ...runs.map((r) => `    ${describeRun(r, def.tz)}`)] : ['  no runs yet']),
  ].join('\n');
}

/**
 * The flags that would rebuild this definition (`schedule set` replaces a definition whole): what an edit form
 * starts from. --waba is the rule's business numbers, or else the inbox's default one.
 */
export function scheduleInputOf(def: ScheduleDefinition): Required<{ [K in keyof ScheduleInput]: string }> {
  const q = def.query;
  return {
    cron: def.cron,
    tz: def.tz,
    overlap: def.overlap,
    inbox: def.inbox?.dir ?? '',
    chatStatus: q?.chatStatus ?? '',
    idleHours: q?.idleHours === undefined ? '' : String(q.idleHours),
    tag: q?.tags?.join(',') ?? '',
    agent: q?.agent ?? '',
    waba: q?.wabaNumbers?.join(',') ?? def.inbox?.defaultWaba ?? '',
    maxChats: def.maxChats === undefined ? '' : String(def.maxChats),
    maxShare: def.maxShare === undefined ? '' : String(def.maxShare),
    // A form's checkbox: 'true' or '' (not given).
    captureAssignees: def.captureAssignees ? 'true' : '',
  };
}

/** The schedule's own limits for the brake, in words (MAX_BATCH_CHATS applies to every batch besides). */
function brakeText(def: ScheduleDefinition): string {
  const parts = [
    ...(def.maxChats === undefined ? [] : [`more than ${def.maxChats} chats (--max-chats)`]),
    ...(def.maxShare === undefined ? [] : [`more than ${Math.round(def.maxShare * 1000) / 10}% of the chats listed (--max-share)`]),
  ];
  return parts.length === 0
    ? 'MAX_BATCH_CHATS only (a batch above it waits for `approve`)'
    : `a batch waits for \`approve\` above ${parts.join(' or ')}, or above MAX_BATCH_CHATS`;
}

/** What the console shows of a schedule (and `show --json` prints): the definition, next tick, last runs. */
export interface ScheduleDetails extends ScheduleDefinition {
  readonly nextRun: number | null;
  readonly runs: readonly ScheduleRun[];
  readonly sources: readonly string[];
  readonly input: ReturnType<typeof scheduleInputOf>;
}

export async function scheduleDetails(schedules: ScheduleStore, def: ScheduleDefinition, runLimit?: number): Promise<ScheduleDetails> {
  return {
    ...def,
    nextRun: (await schedules.nextRun(def.name)) ?? null,
    runs: await schedules.runs(def.name, runLimit),
    sources: describeSources(def),
    input: scheduleInputOf(def),
  };
}

export interface DefinitionOrigin {
  /** Relative inbox paths are resolved against this (the CLI's working directory, or the console's). */
  readonly cwd: string;
  readonly now?: number;
}

/** `schedule set`'s checks, without saving: the definition, or the UsageError that names the flag at fault. */
export async function checkDefinition(
  ctx: Pick<Context, 'config'>,
  name: string,
  input: ScheduleInput,
  origin: DefinitionOrigin,
  existing?: ScheduleDefinition,
): Promise<ScheduleDefinition> {
  const definition = buildDefinition(name, input, {
    cwd: origin.cwd,
    now: origin.now ?? Date.now(),
    defaultTz: Intl.DateTimeFormat().resolvedOptions().timeZone,
    defaultCountry: ctx.config.defaultCountry,
    existing,
  });
  if (definition.inbox) {
    const info = await stat(definition.inbox.dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new UsageError(`--inbox ${definition.inbox.dir}: no such folder (create it first; workers read it at the same path)`);
  }
  return definition;
}

export interface SetScheduleResult {
  readonly definition: ScheduleDefinition;
  /** False when an existing schedule of that name was replaced. */
  readonly created: boolean;
}

/** `schedule set`: validates, then creates or replaces the definition and its BullMQ job scheduler. */
export async function setSchedule(
  ctx: Pick<Context, 'config' | 'audit'>,
  schedules: ScheduleStore,
  name: string,
  input: ScheduleInput,
  origin: DefinitionOrigin,
  actor: Actor,
): Promise<SetScheduleResult> {
  const existing = await schedules.get(checkScheduleName(name));
  const definition = await checkDefinition(ctx, name, input, origin, existing);
  try {
    await schedules.save(definition);
  } catch (error) {
    // BullMQ's cron parser is the judge of the pattern; its message says which field is wrong.
    throw new UsageError(`--cron ${JSON.stringify(definition.cron)}: ${(error as Error).message}`);
  }
  await ctx.audit.record({
    actor,
    action: 'schedule-set',
    details: {
      schedule: definition.name,
      created: existing === undefined,
      cron: definition.cron,
      tz: definition.tz,
      overlap: definition.overlap,
      sources: describeSources(definition).join('; '),
    },
  });
  return { definition, created: existing === undefined };
}

/** `schedule remove`: the definition, its scheduler, state and history go; its batches and reports stay. */
export async function removeSchedule(ctx: Pick<Context, 'audit'>, schedules: ScheduleStore, name: string, actor: Actor): Promise<string> {
  const scheduleName = checkScheduleName(name);
  // Only the call whose remove took the definition away records it: two removes at once leave one entry.
  if (!(await schedules.remove(scheduleName))) throw new UsageError(`no schedule named "${scheduleName}"`);
  await ctx.audit.record({ actor, action: 'schedule-remove', details: { schedule: scheduleName } });
  return scheduleName;
}

/** What a run started from here needs: the API client and the pacer (closed by `close`), the stores. */
function runDepsFor(ctx: Context, schedules: ScheduleStore, definition: ScheduleDefinition): { deps: RunDeps; close: () => Promise<void> } {
  const { config } = ctx;
  const { api, pacer, close } = makePacedApi(ctx.redis, ctx.keys, config, ctx.logger, {
    apiKey: definition.query ? requireApiKey(config) : (config.apiKey ?? ''),
  });
  return { deps: { ...ctx, schedules, api, pace: () => pacer.acquire(), rateLimit: (ms: number) => pacer.pause(ms) }, close };
}

/** How often a run-now that waits (--overlap wait) re-checks the previous run. */
const WAIT_POLL_MS = 2000;

export interface RunNowOptions {
  /** Who pressed run-now: the batches' creator and the audit entry's actor. */
  readonly actor: Actor;
  readonly dryRun?: boolean;
  /**
   * For a schedule with `--overlap wait` whose previous run is still going: called once, then the run waits
   * until it may start (the CLI). Without it such a run is refused (BatchStateError) and nothing is recorded:
   * the console cannot hold a request open for as long as a batch runs.
   */
  readonly onWait?: (blockedBy: string) => void;
  /** @default WAIT_POLL_MS */
  readonly pollMs?: number;
}

export interface RunNowResult {
  readonly definition: ScheduleDefinition;
  readonly run: ScheduleRun;
  readonly batches: readonly BatchRecord[];
  readonly inbox: readonly InboxFileResult[];
  /** The overlap rule skipped it (the run is logged as skipped). */
  readonly skipped: boolean;
}

/**
 * `schedule run-now`: one run from here with the schedule's overlap rule; the chats are left to the workers.
 * A dry run makes dry-run batches (their reports written, their retention clock started) and moves no file.
 */
export async function runScheduleNow(ctx: Context, schedules: ScheduleStore, name: string, options: RunNowOptions): Promise<RunNowResult> {
  const definition = await requireSchedule(schedules, name);
  const { deps, close } = runDepsFor(ctx, schedules, definition);
  const owner = `run-now-${process.pid}-${randomBytes(4).toString('hex')}`;
  const tick = Date.now();
  const dryRun = options.dryRun === true;
  const createdBy = options.actor.name;
  const record = (outcome: RunNowResult): Promise<unknown> =>
    ctx.audit.record({
      actor: options.actor,
      action: 'schedule-run-now',
      ...(outcome.batches.length === 1 ? { batchId: outcome.batches[0]!.id } : {}),
      details: {
        schedule: definition.name,
        outcome: outcome.run.outcome,
        batches: outcome.batches.map((b) => b.id).join(','),
        ...(dryRun ? { dryRun: true } : {}),
      },
    });
  try {
    let result: RunResult = await runSchedule(deps, { definition, tick, owner, manual: true, dryRun, createdBy });
    if (result.kind === 'busy' && definition.overlap === 'wait') {
      if (!options.onWait)
        throw new BatchStateError(
          `schedule ${definition.name} waits for its previous run (--overlap wait): ${result.blockedBy}; run it again when that has finished`,
        );
      options.onWait(result.blockedBy);
      const waited = { since: Date.now(), blockedBy: result.blockedBy };
      while (result.kind === 'busy') {
        await new Promise((r) => setTimeout(r, options.pollMs ?? WAIT_POLL_MS));
        if ((await busyReason(deps, definition.name)) === '') result = await runSchedule(deps, { definition, tick, owner, manual: true, waited, createdBy });
      }
    }
    if (result.kind === 'busy') {
      const run = await recordSkip(deps, { definition, tick, owner, manual: true }, result);
      const skipped: RunNowResult = { definition, run, batches: [], inbox: [], skipped: true };
      await record(skipped);
      return skipped;
    }
    if (dryRun) for (const batch of result.batches) await completeDryRun(ctx, batch);
    const done: RunNowResult = { definition, run: result.run, batches: result.batches, inbox: result.inbox, skipped: false };
    await record(done);
    return done;
  } finally {
    await close();
  }
}

export interface SchedulePreview {
  readonly definition: ScheduleDefinition;
  /** The run's one-line message (what was listed and selected, files read). */
  readonly message: string;
  /** One dry-run batch per source that had chats: counts and the first chats. */
  readonly batches: readonly (DryRunView & { readonly name: string; readonly source: string })[];
  /** Files the inbox folder holds now (each read as a dry run; none moved), with why any was refused. */
  readonly inboxFiles: readonly { readonly file: string; readonly error?: string }[];
}

/**
 * A dry run of a definition that need not be saved yet (the console previews its form with it): the same
 * checks as `setSchedule`, then the sources read as `run-now --dry-run` reads them — no overlap check, no lock,
 * nothing remembered, no file moved.
 */
export async function previewSchedule(
  ctx: Context,
  schedules: ScheduleStore,
  name: string,
  input: ScheduleInput,
  origin: DefinitionOrigin,
  actor: Actor,
): Promise<SchedulePreview> {
  const existing = await schedules.get(checkScheduleName(name));
  const definition = await checkDefinition(ctx, name, input, origin, existing);
  const { deps, close } = runDepsFor(ctx, schedules, definition);
  try {
    const result = await runSchedule(deps, {
      definition,
      tick: origin.now ?? Date.now(),
      owner: `preview-${randomBytes(4).toString('hex')}`,
      manual: true,
      dryRun: true,
      createdBy: actor.name,
    });
    if (result.kind === 'busy') throw new BatchStateError(result.blockedBy); // a dry run never checks overlap; kept for the type
    // A preview makes dry-run batches (kept with their reports): recorded as a dry run of the schedule's sources.
    await ctx.audit.record({
      actor,
      action: 'dry-run',
      ...(result.batches.length === 1 ? { batchId: result.batches[0]!.id } : {}),
      details: { schedule: definition.name, preview: true, batches: result.batches.map((b) => b.id).join(',') },
    });
    const batches = [];
    for (const batch of result.batches) {
      await completeDryRun(ctx, batch);
      batches.push({ ...(await dryRunView(ctx, batch)), name: batch.name, source: batch.source });
    }
    return {
      definition,
      message: result.run.message,
      batches,
      inboxFiles: result.inbox.map((f) => ({ file: f.file, ...(f.error === undefined ? {} : { error: f.error }) })),
    };
  } finally {
    await close();
  }
}
