/**
 * The BullMQ queue and the job shapes on it. One queue for every batch: BullMQ's limiter is per queue, so one
 * queue is what makes the rate limit global across batches and worker processes.
 */
import { createHash } from 'node:crypto';

import { type JobsOptions, Queue } from 'bullmq';

import type { Keys } from './keys.js';
import { QUEUE_NAME } from './keys.js';
import { jobRetryOptions, RETRY_POLICIES, type RetryPolicy } from '../domain/retry-policy.js';
import type { ScriptedRedis } from './scripts.js';
import { type JsonObject, jsonObject, memberOf, numberMember, optionalStringMember, stringMember } from './codecs.js';

/** Data of an `unassign` job: deliberately tiny (batch id + chat key); the row itself stays in the batch's chats hash. */
export interface UnassignJobData {
  readonly b: string;
  readonly k: string;
}

/** Data of a `finalize` job: writes the batch's report once every chat is terminal. */
export interface FinalizeJobData {
  readonly b: string;
}

/** Data of a `nightly` job (made by a schedule's BullMQ job scheduler, see schedule/store.ts): the schedule's name. */
export interface ScheduleJobData {
  readonly s: string;
  /** Set while the run waits for the previous one (--overlap wait): when it first found it busy, and why. */
  readonly w?: { readonly since: number; readonly blockedBy: string };
}

/** A finished batch's summary as the webhook sends it (the report's summary.json; see report/report.ts). */
export type NotifySummary = { readonly batchId: string } & Readonly<Record<string, unknown>>;

/** Data of a `notify` job: the finished scheduled batch's summary, for NOTIFY_WEBHOOK_URL. */
export interface NotifyJobData {
  readonly summary: NotifySummary;
  /** The webhook event the body is (report/webhook.ts); absent: a finished batch's summary. */
  readonly event?: string;
}

/** Data of an `expire-approval` job: the held batch to reject if it still waits for approval when the job runs. */
export interface ExpireApprovalJobData {
  readonly b: string;
}

/** Everything that travels on the queue. */
export type QueueJobData = UnassignJobData | FinalizeJobData | ScheduleJobData | NotifyJobData | ExpireApprovalJobData;

export const JOB_UNASSIGN = 'unassign';
export const JOB_FINALIZE = 'finalize';
/** A schedule's tick: read its sources into batches. */
export const JOB_NIGHTLY = 'nightly';
/** POST a finished scheduled batch's summary to NOTIFY_WEBHOOK_URL. */
export const JOB_NOTIFY = 'notify';
/** Reject a batch held for approval once APPROVAL_TIMEOUT_HOURS have passed (a delayed job, added when it is held). */
export const JOB_EXPIRE_APPROVAL = 'expire-approval';

/** Every job name a worker runs; a job with any other name fails instead of being guessed at. */
export const JOB_NAMES = [JOB_UNASSIGN, JOB_FINALIZE, JOB_NIGHTLY, JOB_NOTIFY, JOB_EXPIRE_APPROVAL] as const;
export type JobName = (typeof JOB_NAMES)[number];

export function isJobName(name: string): name is JobName {
  return (JOB_NAMES as readonly string[]).includes(name);
}

/** The data each job name carries. */
export interface JobDataByName {
  readonly [JOB_UNASSIGN]: UnassignJobData;
  readonly [JOB_FINALIZE]: FinalizeJobData;
  readonly [JOB_NIGHTLY]: ScheduleJobData;
  readonly [JOB_NOTIFY]: NotifyJobData;
  readonly [JOB_EXPIRE_APPROVAL]: ExpireApprovalJobData;
}

const JOB_DATA_DECODERS: { readonly [N in JobName]: (data: JsonObject, where: string) => JobDataByName[N] } = {
  [JOB_UNASSIGN]: (data, where) => ({ b: stringMember(data, 'b', where), k: stringMember(data, 'k', where) }),
  [JOB_FINALIZE]: (data, where) => ({ b: stringMember(data, 'b', where) }),
  [JOB_EXPIRE_APPROVAL]: (data, where) => ({ b: stringMember(data, 'b', where) }),
  [JOB_NIGHTLY]: (data, where) => {
    const s = stringMember(data, 's', where);
    if (memberOf(data, 'w') === undefined) return { s };
    const waitWhere = `${where} member "w"`;
    const w = jsonObject(memberOf(data, 'w'), waitWhere);
    return { s, w: { since: numberMember(w, 'since', waitWhere, true), blockedBy: stringMember(w, 'blockedBy', waitWhere) } };
  },
  [JOB_NOTIFY]: (data, where) => {
    const summaryWhere = `${where} member "summary"`;
    const summary = jsonObject(memberOf(data, 'summary'), summaryWhere);
    const event = optionalStringMember(data, 'event', where);
    return { summary: { ...summary, batchId: stringMember(summary, 'batchId', summaryWhere) }, ...(event === undefined ? {} : { event }) };
  },
};

/**
 * A job's data checked against its name's shape. Job data is JSON that BullMQ reads back from Redis, written by
 * whichever build enqueued the job: a job of another data layout is refused (a DataLayoutError naming the job
 * and the member) before a processor reads a field of it.
 */
export function decodeJobData<N extends JobName>(name: N, data: unknown, where: string): JobDataByName[N] {
  return JOB_DATA_DECODERS[name](jsonObject(data, where), where);
}

/** BullMQ's highest priority number (2^21 - 1). */
export const PRIORITY_LIMIT = 2 ** 21 - 1;

/**
 * Deterministic job id from batch + chat: re-delivering an ingest cannot create a second job for a chat.
 * The chat part is a hash, never the phone number: job ids show up in BullMQ's events stream, which outlives
 * RESULTS_TTL_DAYS, and phone numbers are personal data. (A hash also never contains ':', which BullMQ forbids
 * in custom ids.) 96 bits: no collision among a batch's chats in practice.
 */
export function jobIdFor(batchId: string, chatKey: string): string {
  return `${batchId}-${createHash('sha1').update(chatKey).digest('hex').slice(0, 24)}`;
}

export function finalizeJobId(batchId: string): string {
  return `${batchId}-finalize`;
}

/**
 * Fairness between batches: a chat's priority is its position in its batch (1 = first). BullMQ serves lower
 * numbers first, so the n-th chat of every batch runs before the (n+1)-th of any: batches advance round-robin,
 * and a 20-chat batch uploaded behind a 100k-chat batch finishes in its first ~20 rounds instead of waiting
 * for the big one. (One queue per batch would break the global limiter; BullMQ Pro groups are not available.)
 */
export function priorityFor(position: number): number {
  return Math.min(Math.max(1, position + 1), PRIORITY_LIMIT);
}

/** What configuration sets of the `unassign` retry policy (RETRY_POLICIES in retry-policy.ts fixes the rest). */
export interface JobPolicy {
  /** MAX_ATTEMPTS. */
  readonly maxAttempts: number;
  /** Nominal wait before the first retry; doubles for each further retry, with the policy's jitter. */
  readonly backoffDelayMs: number;
}

/** The `unassign` retry policy with the configured attempts and base. */
export function unassignRetryPolicy(policy: JobPolicy): RetryPolicy {
  return { ...RETRY_POLICIES.unassign, attempts: policy.maxAttempts, baseMs: policy.backoffDelayMs };
}

/** Options every unassign job gets. Finished jobs are removed at once: results live in the compact batch records. */
export function unassignJobOptions(batchId: string, chatKey: string, position: number, policy: JobPolicy): JobsOptions {
  return {
    jobId: jobIdFor(batchId, chatKey),
    priority: priorityFor(position),
    ...jobRetryOptions(unassignRetryPolicy(policy)),
    removeOnComplete: true,
    removeOnFail: true,
  };
}

export function makeQueue(connection: ScriptedRedis, keys: Keys): Queue<QueueJobData> {
  return new Queue<QueueJobData>(QUEUE_NAME, { connection, prefix: keys.bullPrefix });
}

/** Enqueues the report job of a batch (idempotent: fixed job id). Finalize jobs have no priority, so they run before any chat. */
export async function enqueueFinalize(queue: Queue<QueueJobData>, batchId: string): Promise<void> {
  await queue.add(
    JOB_FINALIZE,
    { b: batchId },
    { jobId: finalizeJobId(batchId), removeOnComplete: true, removeOnFail: 100, ...jobRetryOptions(RETRY_POLICIES.finalize) },
  );
}

/**
 * Enqueues the webhook call for a finished scheduled batch (idempotent: fixed job id). A job rather than an
 * in-process retry loop: the batch's finalize never waits for the receiver, and retries survive a restart.
 * Retried per RETRY_POLICIES.notify (12 attempts, 17-34 min in all) before the notification is given up.
 */
export async function enqueueNotify(queue: Queue<QueueJobData>, summary: NotifySummary, event?: string): Promise<void> {
  await queue.add(JOB_NOTIFY, event === undefined ? { summary } : { summary, event }, {
    jobId: `${summary.batchId}-notify${event === undefined ? '' : `-${event.replace(/[^a-z_]/g, '-')}`}`,
    ...jobRetryOptions(RETRY_POLICIES.notify),
    removeOnComplete: true,
    removeOnFail: 100,
  });
}

export function approvalExpiryJobId(batchId: string): string {
  return `${batchId}-expire-approval`;
}

/**
 * Schedules the expiry of a batch held for approval: a delayed job, so nothing polls while it waits, and the
 * wait survives a restart. Idempotent (fixed job id). The job rejects the batch only if it is still held then.
 */
export async function enqueueApprovalExpiry(queue: Queue<QueueJobData>, batchId: string, delayMs: number): Promise<void> {
  await queue.add(
    JOB_EXPIRE_APPROVAL,
    { b: batchId },
    {
      jobId: approvalExpiryJobId(batchId),
      delay: Math.max(0, delayMs),
      removeOnComplete: true,
      removeOnFail: 100,
      ...jobRetryOptions(RETRY_POLICIES.finalize),
    },
  );
}
