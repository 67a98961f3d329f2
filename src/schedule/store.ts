/**
 * Schedules in Redis. Three parts, all under the queue prefix:
 *  - the definition (sources, overlap rule, cron + time zone) in `keys.schedules`, name → JSON;
 *  - a BullMQ job scheduler per schedule on the unassign queue (queue.upsertJobScheduler): BullMQ keeps one
 *    delayed `nightly` job per scheduler and makes the next one only when a worker takes the current one, so a
 *    tick runs once however many worker processes there are, and a tick missed while every worker was down
 *    runs when the first one comes back (the schedule lives in Redis, not in a process);
 *  - run state in `keys.scheduleState`: `last:<name>` → the batch ids of its last run (the overlap rule looks
 *    at them), `waiting:<name>` → the run waiting for them (--overlap wait); and a short history of runs per
 *    schedule (`keys.scheduleRuns`) for `schedule show`. Separate fields, so the run that holds the schedule's
 *    lock and a newer tick registering as the waiter never overwrite each other.
 */
import type { Queue } from 'bullmq';

import { CHAT_STATUSES, type ChatRule, type ChatStatus } from './rule.js';
import type { Keys } from '../store/keys.js';
import { JOB_NIGHTLY, type QueueJobData, type ScheduleJobData } from '../store/queue.js';
import { hdelIfEquals, type ScriptedRedis } from '../store/scripts.js';
import {
  booleanMember,
  decodeStringArray,
  hashField,
  jsonObject,
  memberOf,
  mismatch,
  numberMember,
  oneOf,
  optionalStringMember,
  parseJson,
  stringArrayMember,
  stringMember,
} from '../store/codecs.js';

/** What a run does when the previous scheduled run's batches are still going. */
export type OverlapRule = 'skip' | 'wait';

export interface ScheduleDefinition {
  /** Letters, digits, '_' and '-'; batches are named `<name>-<date>`. */
  readonly name: string;
  /** Cron pattern (5 fields, or 6 with seconds first). */
  readonly cron: string;
  /** IANA time zone the cron pattern and the batch date are read in. */
  readonly tz: string;
  readonly overlap: OverlapRule;
  /** GET /chats source, when the schedule has one. */
  readonly query?: ChatRule;
  /** Inbox folder source, when the schedule has one: every *.csv in it becomes a batch. */
  readonly inbox?: { readonly dir: string; readonly defaultWaba?: string };
  /** --max-chats: a run's batch above this many chats is held for approval (the brake; MAX_BATCH_CHATS applies too). */
  readonly maxChats?: number;
  /** --max-share: a query batch selecting more than this share, in (0, 1], of the chats listed is held for approval. */
  readonly maxShare?: number;
  /**
   * The inbox's batches read each chat's agent right before its unassign call (--capture-assignees), so they can
   * be restored. A rule's batches need no capture: GET /chats gives each chat's agent.
   */
  readonly captureAssignees?: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** How one run ended. */
export type RunOutcome = 'started' | 'empty' | 'skipped' | 'failed' | 'dry-run';

export interface ScheduleRun {
  /** The tick this run belongs to (the scheduler's planned time, epoch ms), or the time of a run-now. */
  readonly tick: number;
  readonly manual: boolean;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly outcome: RunOutcome;
  readonly batchIds: readonly string[];
  /** One line on what happened (counts, what it skipped for, the error). */
  readonly message: string;
}

/** The run waiting for the previous one to finish (--overlap wait). */
export interface WaitingRun {
  readonly jobId: string;
  readonly tick: number;
  readonly since: number;
}

/*
 * Decoders for the values above as read back from Redis (see store/codecs.ts): they live here, with the
 * shapes, because the store layer may not import the schedule layer.
 */

const isOverlapRule = oneOf<OverlapRule>({ skip: true, wait: true });
const isRunOutcome = oneOf<RunOutcome>({ started: true, empty: true, skipped: true, failed: true, 'dry-run': true });
const isChatStatus = (value: unknown): value is ChatStatus => typeof value === 'string' && (CHAT_STATUSES as readonly string[]).includes(value);

function decodeChatRule(value: unknown, where: string): ChatRule {
  const obj = jsonObject(value, where);
  const chatStatus = memberOf(obj, 'chatStatus');
  if (chatStatus !== undefined && !isChatStatus(chatStatus)) mismatch(`${where} member "chatStatus"`, `one of ${CHAT_STATUSES.join(', ')}`, chatStatus);
  const agent = optionalStringMember(obj, 'agent', where);
  return {
    ...(chatStatus === undefined ? {} : { chatStatus }),
    ...(memberOf(obj, 'tags') === undefined ? {} : { tags: stringArrayMember(obj, 'tags', where) }),
    ...(agent === undefined ? {} : { agent }),
    ...(memberOf(obj, 'wabaNumbers') === undefined ? {} : { wabaNumbers: stringArrayMember(obj, 'wabaNumbers', where) }),
    ...(memberOf(obj, 'idleHours') === undefined ? {} : { idleHours: numberMember(obj, 'idleHours', where) }),
  };
}

function decodeInbox(value: unknown, where: string): NonNullable<ScheduleDefinition['inbox']> {
  const obj = jsonObject(value, where);
  const defaultWaba = optionalStringMember(obj, 'defaultWaba', where);
  return { dir: stringMember(obj, 'dir', where), ...(defaultWaba === undefined ? {} : { defaultWaba }) };
}

/** A schedule definition (a field of `keys.schedules`); `where` names it in a DataLayoutError. */
export function decodeScheduleDefinition(text: string, where: string): ScheduleDefinition {
  const obj = jsonObject(parseJson(text, where), where);
  const overlap = memberOf(obj, 'overlap');
  const query = memberOf(obj, 'query');
  const inbox = memberOf(obj, 'inbox');
  return {
    name: stringMember(obj, 'name', where),
    cron: stringMember(obj, 'cron', where),
    tz: stringMember(obj, 'tz', where),
    overlap: isOverlapRule(overlap) ? overlap : mismatch(`${where} member "overlap"`, 'skip or wait', overlap),
    ...(query === undefined ? {} : { query: decodeChatRule(query, `${where} member "query"`) }),
    ...(inbox === undefined ? {} : { inbox: decodeInbox(inbox, `${where} member "inbox"`) }),
    ...(memberOf(obj, 'maxChats') === undefined ? {} : { maxChats: numberMember(obj, 'maxChats', where, true) }),
    ...(memberOf(obj, 'maxShare') === undefined ? {} : { maxShare: numberMember(obj, 'maxShare', where) }),
    ...(memberOf(obj, 'captureAssignees') === undefined ? {} : { captureAssignees: booleanMember(obj, 'captureAssignees', where) }),
    createdAt: numberMember(obj, 'createdAt', where),
    updatedAt: numberMember(obj, 'updatedAt', where),
  };
}

/** An entry of a schedule's run history (`keys.scheduleRuns`). */
export function decodeScheduleRun(text: string, where: string): ScheduleRun {
  const obj = jsonObject(parseJson(text, where), where);
  const outcome = memberOf(obj, 'outcome');
  return {
    tick: numberMember(obj, 'tick', where),
    manual: booleanMember(obj, 'manual', where),
    startedAt: numberMember(obj, 'startedAt', where),
    endedAt: numberMember(obj, 'endedAt', where),
    outcome: isRunOutcome(outcome) ? outcome : mismatch(`${where} member "outcome"`, 'started, empty, skipped, failed or dry-run', outcome),
    batchIds: stringArrayMember(obj, 'batchIds', where),
    message: stringMember(obj, 'message', where),
  };
}

/** A waiting run (a `waiting:<schedule>` field of `keys.scheduleState`). */
export function decodeWaitingRun(text: string, where: string): WaitingRun {
  const obj = jsonObject(parseJson(text, where), where);
  return { jobId: stringMember(obj, 'jobId', where), tick: numberMember(obj, 'tick', where), since: numberMember(obj, 'since', where) };
}

/** Runs kept per schedule for `schedule show`. */
export const RUN_HISTORY = 50;

/** The BullMQ job scheduler id of a schedule. */
export function schedulerIdFor(name: string): string {
  return `schedule-${name}`;
}

/**
 * The tick a scheduler-made job belongs to: BullMQ names them `repeat:<schedulerId>:<planned ms>`.
 * Falls back to creation time + delay for jobs added by hand.
 */
export function tickOfJob(job: { id?: string | undefined; timestamp: number; opts: { delay?: number } }): number {
  const last = Number(job.id?.split(':').pop());
  return Number.isFinite(last) && last > 0 ? last : job.timestamp + (job.opts.delay ?? 0);
}

export interface ScheduleStore {
  get(name: string): Promise<ScheduleDefinition | undefined>;
  list(): Promise<ScheduleDefinition[]>;
  /** Saves the definition and creates or updates its BullMQ job scheduler. Throws BullMQ's error for a bad cron. */
  save(definition: ScheduleDefinition): Promise<void>;
  /** Removes definition, scheduler, state, history and a waiting run. Returns false if there was no such schedule. */
  remove(name: string): Promise<boolean>;
  /** Next planned tick (epoch ms), from the BullMQ scheduler. */
  nextRun(name: string): Promise<number | undefined>;
  /** Batches made by the last run: the "previous scheduled batches" of the overlap rule. */
  lastBatchIds(name: string): Promise<string[]>;
  setLastBatchIds(name: string, batchIds: readonly string[]): Promise<void>;
  waiting(name: string): Promise<WaitingRun | undefined>;
  /** Sets, or with undefined clears, the waiting run. Clearing with `onlyJobId` clears only that job's entry. */
  setWaiting(name: string, waiting: WaitingRun | undefined, onlyJobId?: string): Promise<void>;
  /** Every schedule's waiting run (few: at most one per schedule). */
  allWaiting(): Promise<Map<string, WaitingRun>>;
  addRun(name: string, run: ScheduleRun): Promise<void>;
  /** Newest first. */
  runs(name: string, limit?: number): Promise<ScheduleRun[]>;
}

/** Scheduled jobs keep a little history in BullMQ for debugging; results live in the run history. */
const TEMPLATE_OPTS = { attempts: 1, removeOnComplete: { count: 20 }, removeOnFail: { count: 50 } } as const;

export function makeScheduleStore(redis: ScriptedRedis, keys: Keys, queue: Queue<QueueJobData>): ScheduleStore {
  const store: ScheduleStore = {
    get: async (name) => {
      const raw = await redis.hget(keys.schedules, name);
      return raw ? decodeScheduleDefinition(raw, hashField(keys.schedules, name)) : undefined;
    },
    list: async () => {
      const all = await redis.hgetall(keys.schedules);
      return Object.entries(all)
        .map(([name, raw]) => decodeScheduleDefinition(raw, hashField(keys.schedules, name)))
        .sort((a, b) => a.name.localeCompare(b.name));
    },
    save: async (definition) => {
      const data: ScheduleJobData = { s: definition.name };
      // Scheduler first: if BullMQ refuses the pattern, no definition is left behind without a scheduler.
      await queue.upsertJobScheduler(
        schedulerIdFor(definition.name),
        { pattern: definition.cron, tz: definition.tz },
        { name: JOB_NIGHTLY, data, opts: TEMPLATE_OPTS },
      );
      await redis.hset(keys.schedules, definition.name, JSON.stringify(definition));
    },
    remove: async (name) => {
      const waiting = await store.waiting(name);
      const hadScheduler = await queue.removeJobScheduler(schedulerIdFor(name));
      if (waiting) await queue.remove(waiting.jobId).catch(() => 0);
      const [[, removed]] = (await redis
        .multi()
        .hdel(keys.schedules, name)
        .hdel(keys.scheduleState, `last:${name}`, `waiting:${name}`)
        .del(keys.scheduleRuns(name))
        .exec()) as [[Error | null, number]];
      return removed === 1 || hadScheduler;
    },
    nextRun: async (name) => {
      const scheduler = await queue.getJobScheduler(schedulerIdFor(name));
      return scheduler?.next;
    },
    lastBatchIds: async (name) => {
      const raw = await redis.hget(keys.scheduleState, `last:${name}`);
      return raw ? decodeStringArray(raw, hashField(keys.scheduleState, `last:${name}`)) : [];
    },
    setLastBatchIds: async (name, batchIds) => {
      await redis.hset(keys.scheduleState, `last:${name}`, JSON.stringify(batchIds));
    },
    waiting: async (name) => {
      const raw = await redis.hget(keys.scheduleState, `waiting:${name}`);
      return raw ? decodeWaitingRun(raw, hashField(keys.scheduleState, `waiting:${name}`)) : undefined;
    },
    setWaiting: async (name, waiting, onlyJobId) => {
      const field = `waiting:${name}`;
      if (waiting) {
        await redis.hset(keys.scheduleState, field, JSON.stringify(waiting));
        return;
      }
      if (onlyJobId === undefined) {
        await redis.hdel(keys.scheduleState, field);
        return;
      }
      // Compare-and-delete: a newer run that registers as the waiter between this read and the delete keeps its mark.
      const raw = await redis.hget(keys.scheduleState, field);
      if (raw === null || decodeWaitingRun(raw, hashField(keys.scheduleState, field)).jobId !== onlyJobId) return;
      await hdelIfEquals(redis, keys.scheduleState, field, raw);
    },
    allWaiting: async () => {
      const all = await redis.hgetall(keys.scheduleState);
      const out = new Map<string, WaitingRun>();
      for (const [field, raw] of Object.entries(all))
        if (field.startsWith('waiting:')) out.set(field.slice(8), decodeWaitingRun(raw, hashField(keys.scheduleState, field)));
      return out;
    },
    addRun: async (name, run) => {
      await redis
        .multi()
        .lpush(keys.scheduleRuns(name), JSON.stringify(run))
        .ltrim(keys.scheduleRuns(name), 0, RUN_HISTORY - 1)
        .exec();
    },
    runs: async (name, limit = RUN_HISTORY) => {
      const key = keys.scheduleRuns(name);
      return (await redis.lrange(key, 0, limit - 1)).map((raw, i) => decodeScheduleRun(raw, `${key}[${i}]`));
    },
  };
  return store;
}
