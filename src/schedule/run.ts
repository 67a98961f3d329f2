/**
 * One run of a schedule: check the overlap rule, read the schedule's sources into normal batches (kind
 * 'nightly', named `<schedule>-<date in the schedule's time zone>`), remember them for the next run's overlap
 * check, and log the run. Used by the worker's `nightly` job (jobs/nightly.ts) and by `schedule run-now`.
 *
 * At most one run of a schedule reads its sources at a time: an owned lock in Redis (scripts.ts ownedLock),
 * kept alive while the run reads and expiring if its process dies. A job re-delivered after a crash owns the
 * same lock (the owner is the job id) and takes it back at once.
 */
import type { BatchRecord } from '../store/batch-store.js';
import { openChatQuerySource } from './chat-source.js';
import type { DoubleTickApi } from '../execution/api-client.js';
import { describeRule } from './rule.js';
import { MINUTE, type ResolvedConfig } from '../config/config.js';
import { ingest, type IngestDeps } from '../ingest/enqueue.js';
import { ChatListError, NoValidRowsError } from '../domain/errors.js';
import { type InboxFileResult, ingestInbox } from './inbox.js';
import type { Logger } from '../config/logger.js';
import type { ScheduleDefinition, ScheduleRun, ScheduleStore } from './store.js';
import { FINAL, Status } from '../domain/lifecycle.js';
import { ownedLock } from '../store/scripts.js';
import { configuredBrake } from '../ingest/hold.js';
import type { AuditStore } from '../store/audit-store.js';
import { scheduleActor } from '../domain/actor.js';

/** Batch states after which a scheduled batch no longer blocks the next run (a stopped or paused batch still does). */

/** The lock outlives a stall of its keep-alive by a wide margin, and frees the schedule soon after a crash. */
export const RUN_LOCK_TTL_MS = 2 * MINUTE;

export interface RunDeps extends IngestDeps {
  readonly config: ResolvedConfig;
  readonly logger: Logger;
  readonly schedules: ScheduleStore;
  /** GET /chats, and the group listing that finds a listed group chat's groupId. */
  readonly api: Pick<DoubleTickApi, 'listChats' | 'listGroups'>;
  /** Waits for an API call slot (pacer.acquire). */
  readonly pace: () => Promise<void>;
  /** Pauses every API caller after a 429. */
  readonly rateLimit: (ms: number) => Promise<void>;
  /** Where a tick that started batches is recorded. */
  readonly audit: AuditStore;
}

export interface RunRequest {
  readonly definition: ScheduleDefinition;
  /** The tick (planned time) this run is for. */
  readonly tick: number;
  /** Lock owner: the job id, so a re-delivered job resumes its own run. */
  readonly owner: string;
  /** Started with `schedule run-now`. */
  readonly manual?: boolean;
  /** Preview: dry-run batches, no file moves, no overlap check, nothing remembered. */
  readonly dryRun?: boolean;
  /** Set when the run waited for the previous one (--overlap wait). */
  readonly waited?: { readonly since: number; readonly blockedBy: string };
  /** Who starts the batches (BatchRecord.createdBy). @default the schedule (`schedule <name>`) */
  readonly createdBy?: string;
}

function creatorOf(req: RunRequest): string {
  return req.createdBy ?? scheduleActor(req.definition.name).name;
}

export type RunResult =
  /** The previous run is still going: nothing was read. The caller skips or waits (the overlap rule). */
  | { readonly kind: 'busy'; readonly blockedBy: string; readonly blockingBatchIds: readonly string[] }
  | { readonly kind: 'done'; readonly run: ScheduleRun; readonly batches: readonly BatchRecord[]; readonly inbox: readonly InboxFileResult[] };

function partsIn(tick: number, tz: string): Record<string, string> {
  const format = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  return Object.fromEntries(format.formatToParts(new Date(tick)).map((p) => [p.type, p.value]));
}

/** `2026-11-25`: the tick's date in the schedule's time zone (what a 02:00 IST run calls "tonight"). */
export function localDate(tick: number, tz: string): string {
  const p = partsIn(tick, tz);
  return `${p.year}-${p.month}-${p.day}`;
}

/** `2026-11-25 02:00:00 Asia/Kolkata`, for notes and `schedule show`. */
export function localTime(tick: number, tz: string): string {
  const p = partsIn(tick, tz);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${tz}`;
}

/** True for a time zone Intl (and so BullMQ's cron parser) knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Batches of the schedule's last run that are not settled yet. */
export async function unsettledBatches(deps: Pick<RunDeps, 'schedules' | 'batches'>, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of await deps.schedules.lastBatchIds(name)) {
    const batch = await deps.batches.get(id);
    if (batch && !FINAL.has(batch.status)) out.push(id); // an expired record is long settled
  }
  return out;
}

/** Would a run of this schedule be blocked right now? ('' when not.) */
export async function busyReason(deps: Pick<RunDeps, 'schedules' | 'batches' | 'redis' | 'keys'>, name: string): Promise<string> {
  if (await deps.redis.exists(deps.keys.scheduleLock(name))) return 'another run of this schedule is still reading its sources';
  const running = await unsettledBatches(deps, name);
  return running.length > 0 ? `previous scheduled batch ${running.join(', ')} still running` : '';
}

/** Holds the schedule's lock while `work` runs; undefined if someone else holds it. */
async function withRunLock<T>(deps: RunDeps, name: string, owner: string, work: () => Promise<T>): Promise<T | undefined> {
  const key = deps.keys.scheduleLock(name);
  if (!(await ownedLock(deps.redis, key, { action: 'acquire', owner, ttlMs: RUN_LOCK_TTL_MS }))) return undefined;
  const keepAlive = setInterval(
    () => void ownedLock(deps.redis, key, { action: 'extend', owner, ttlMs: RUN_LOCK_TTL_MS }).catch(() => undefined),
    RUN_LOCK_TTL_MS / 4,
  );
  keepAlive.unref();
  try {
    return await work();
  } finally {
    clearInterval(keepAlive);
    await ownedLock(deps.redis, key, { action: 'release', owner, ttlMs: RUN_LOCK_TTL_MS });
  }
}

interface SourcesOutcome {
  readonly batches: BatchRecord[];
  readonly inbox: InboxFileResult[];
  readonly messages: string[];
  failed: boolean;
}

async function readQuery(deps: RunDeps, req: RunRequest, notes: string[], out: SourcesOutcome): Promise<void> {
  const { definition: def } = req;
  if (!def.query) return;
  const source = openChatQuerySource({
    api: deps.api,
    rule: def.query,
    now: req.tick,
    pace: deps.pace,
    rateLimit: deps.rateLimit,
    maxAttempts: deps.policy.maxAttempts,
    backoffDelayMs: deps.policy.backoffDelayMs,
  });
  const listed = (): string => {
    const s = source.stats();
    return `${s.selected} of ${s.listed} listed chat(s) selected (${s.pages} page(s))`;
  };
  try {
    const batch = await ingest(deps, source, {
      batch: { kind: 'nightly', name: `${def.name}-${localDate(req.tick, def.tz)}`, source: describeRule(def.query), notes, createdBy: creatorOf(req) },
      dryRun: req.dryRun ?? false,
      duplicateWindowHours: 0,
      // The brake: a rule that selects more than it should (a filter gone) waits for a person.
      brake: configuredBrake(deps.config, { maxChats: def.maxChats, maxShare: def.maxShare, listed: () => source.stats().listed }),
    });
    out.batches.push(batch);
    out.messages.push(`query: batch ${batch.id}${batch.reason && batch.status === Status.awaitingApproval ? ` ${batch.reason}` : ''}, ${listed()}`);
  } catch (error) {
    if (error instanceof NoValidRowsError) out.messages.push(`query: nothing to unassign, ${listed()}`);
    else if (error instanceof ChatListError) {
      out.failed = true;
      out.messages.push(`query failed: ${error.message}`);
    } else throw error;
  }
}

async function readInbox(deps: RunDeps, req: RunRequest, notes: string[], out: SourcesOutcome): Promise<void> {
  const { definition: def } = req;
  if (!def.inbox) return;
  const { dir, defaultWaba } = def.inbox;
  let results: InboxFileResult[];
  try {
    results = await ingestInbox(deps, {
      dir,
      ...(defaultWaba ? { defaultWaba } : {}),
      batchName: (file) => `${def.name}-${localDate(req.tick, def.tz)} ${file}`,
      notes,
      dryRun: req.dryRun ?? false,
      brake: configuredBrake(deps.config, { maxChats: def.maxChats }),
      createdBy: creatorOf(req),
      ...(def.captureAssignees ? { captureAssignees: true } : {}),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EACCES') throw error;
    out.failed = true;
    out.messages.push(`inbox ${dir} cannot be read (${code})`);
    return;
  }
  out.inbox.push(...results);
  for (const r of results) if (r.batch) out.batches.push(r.batch);
  const rejected = results.filter((r) => r.error !== undefined).length;
  out.messages.push(`inbox: ${results.length} file(s), ${results.length - rejected} batch(es), ${rejected} rejected`);
}

async function readSources(deps: RunDeps, req: RunRequest): Promise<SourcesOutcome> {
  const { definition: def, tick } = req;
  const notes = [`scheduled run of "${def.name}" for ${localTime(tick, def.tz)}${req.manual ? ' (started by hand: schedule run-now)' : ''}`];
  if (req.waited) {
    const late = Math.max(0, Math.round((Date.now() - req.waited.since) / 1000));
    notes.push(`waited ${late} s before starting: ${req.waited.blockedBy} (--overlap wait)`);
  }
  const out: SourcesOutcome = { batches: [], inbox: [], messages: [], failed: false };
  await readQuery(deps, req, notes, out);
  await readInbox(deps, req, notes, out);
  return out;
}

/**
 * Runs the schedule once for `tick`. Returns `busy` without reading anything when the previous run's batches
 * are still going or another run holds the lock; otherwise makes the batches and logs the run.
 */
export async function runSchedule(deps: RunDeps, req: RunRequest): Promise<RunResult> {
  const { definition: def } = req;
  const startedAt = Date.now();
  const finish = async (sources: SourcesOutcome): Promise<RunResult> => {
    const outcome = req.dryRun ? 'dry-run' : sources.batches.length > 0 ? 'started' : sources.failed ? 'failed' : 'empty';
    const run: ScheduleRun = {
      tick: req.tick,
      manual: req.manual ?? false,
      startedAt,
      endedAt: Date.now(),
      outcome,
      batchIds: sources.batches.map((b) => b.id),
      message: sources.messages.join('; '),
    };
    // A schedule removed while this run read its sources leaves no state behind (its batches run on regardless).
    if (!req.dryRun && (await deps.schedules.get(def.name))) {
      await deps.schedules.setLastBatchIds(def.name, run.batchIds);
      await deps.schedules.setWaiting(def.name, undefined, req.owner);
      await deps.schedules.addRun(def.name, run);
    }
    // A tick of the schedule itself (run-now is recorded by whoever pressed it) that started batches.
    if (!req.manual && !req.dryRun && run.batchIds.length > 0) {
      await deps.audit.record({
        actor: scheduleActor(def.name),
        action: 'schedule-tick',
        ...(run.batchIds.length === 1 ? { batchId: run.batchIds[0]! } : {}),
        details: { schedule: def.name, tick: new Date(req.tick).toISOString(), batches: run.batchIds.join(','), message: run.message },
      });
    }
    const level = sources.failed ? 'error' : 'info';
    deps.logger[level]({ schedule: def.name, tick: new Date(req.tick).toISOString(), outcome, batches: run.batchIds }, `scheduled run: ${run.message}`);
    return { kind: 'done', run, batches: sources.batches, inbox: sources.inbox };
  };
  if (req.dryRun) return finish(await readSources(deps, req));

  const result = await withRunLock(deps, def.name, req.owner, async (): Promise<RunResult> => {
    const running = await unsettledBatches(deps, def.name);
    if (running.length > 0) return { kind: 'busy', blockedBy: `previous scheduled batch ${running.join(', ')} still running`, blockingBatchIds: running };
    return finish(await readSources(deps, req));
  });
  if (result === undefined) return { kind: 'busy', blockedBy: 'another run of this schedule is still reading its sources', blockingBatchIds: [] };
  // A run waiting on the lock (not on batches) can go now; one waiting on batches re-checks and sleeps again.
  if (result.kind === 'done') await wakeWaitingRuns(deps, def.name);
  return result;
}

/**
 * Moves waiting runs (--overlap wait) from delayed to waiting so they re-check at once, instead of at their
 * next poll. Called when a scheduled batch finishes and when a run releases its lock. A waiter whose job is
 * gone is forgotten.
 */
export async function wakeWaitingRuns(deps: Pick<RunDeps, 'schedules' | 'queue'>, only?: string): Promise<number> {
  let woken = 0;
  for (const [name, waiting] of await deps.schedules.allWaiting()) {
    if (only !== undefined && name !== only) continue;
    const job = await deps.queue.getJob(waiting.jobId);
    if (!job) {
      await deps.schedules.setWaiting(name, undefined, waiting.jobId);
      continue;
    }
    if ((await job.getState()) !== 'delayed') continue;
    await job.promote().then(
      () => (woken += 1),
      () => undefined, // it left `delayed` meanwhile: it is running its check already
    );
  }
  return woken;
}

/** Logs a skipped run and says so in the report of every batch it skipped for. */
export async function recordSkip(
  deps: Pick<RunDeps, 'schedules' | 'batches' | 'logger'>,
  req: RunRequest,
  blocked: { blockedBy: string; blockingBatchIds: readonly string[] },
  why = '--overlap skip',
): Promise<ScheduleRun> {
  const { definition: def } = req;
  const now = Date.now();
  const run: ScheduleRun = {
    tick: req.tick,
    manual: req.manual ?? false,
    startedAt: now,
    endedAt: now,
    outcome: 'skipped',
    batchIds: [],
    message: `skipped: ${blocked.blockedBy} (${why})`,
  };
  await deps.schedules.addRun(def.name, run);
  for (const id of blocked.blockingBatchIds) {
    await deps.batches
      .addNote(id, `scheduled run of "${def.name}" for ${localTime(req.tick, def.tz)} skipped: this batch was still running (${why})`)
      .catch(() => undefined);
  }
  deps.logger.warn({ schedule: def.name, tick: new Date(req.tick).toISOString() }, `scheduled run ${run.message}`);
  return run;
}
