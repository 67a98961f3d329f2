/**
 * The contract between a worker and the job processors in `jobs/`. The worker owns what is shared by every
 * job of a process (the API client, the global pacer, BullMQ's limiter); the entry point hands it a
 * `JobTable` that builds one processor per job name from those. Nothing under `src/` imports `jobs/`.
 */
import { type Job, UnrecoverableError } from 'bullmq';

import type { ReportSummary } from '../report/report.js';
import type { Context } from '../runtime/context.js';
import { decodeJobData, isJobName, type JobName } from '../store/queue.js';
import type { DoubleTickApi } from './api-client.js';
import type { CallSlot } from './call-slots.js';

/** A BullMQ processor. `token` is the job's lock token (needed to move a job to delayed). */
export type Processor = (job: Job, token?: string) => Promise<unknown>;

/** What a worker process shares with every processor it runs. */
export interface WorkerServices {
  readonly api: DoubleTickApi;
  /**
   * Runs a chat's claim and API call under one of the process's WORKER_CONCURRENCY call slots (call-slots.ts
   * `makeCallSlots`): the worker holds a few more jobs than that, so a job's bookkeeping never keeps a call waiting.
   */
  readonly callSlot: CallSlot;
  /** Waits for this call's slot under the global rate limit. */
  readonly pace: () => Promise<void>;
  /** Pauses every worker of the queue for `ms` (the pacer and BullMQ's limiter): the API answered 429. */
  readonly rateLimit: (ms: number) => Promise<void>;
  /** How long a job's lock lasts unless renewed (a lapsed lock lets another worker take the job). */
  readonly lockDurationMs: number;
  /** Called after a batch's report is written. Never throws. */
  readonly onBatchFinished: (summary: ReportSummary) => Promise<void>;
}

/** Builds the processors of a worker: one per job name on the queue. */
export type JobTable = (ctx: Context, services: WorkerServices) => Readonly<Record<JobName, Processor>>;

/**
 * One processor for the whole queue: runs the table's processor for the job's name. A job this build cannot run
 * fails for good (BullMQ's UnrecoverableError: no retries) instead of being guessed at — a name it has no
 * processor for (a newer producer, a typo), or data that is not of its name's shape (another data layout).
 */
export function dispatch(table: Readonly<Record<JobName, Processor>>): Processor {
  return async (job, token) => {
    const name = job.name;
    if (!isJobName(name)) throw new UnrecoverableError(`unknown job name ${JSON.stringify(name)}: no processor for it in this worker`);
    try {
      decodeJobData(name, job.data, `job ${job.id ?? '?'} (${name}) data`);
    } catch (error) {
      throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
    }
    return table[name](job, token);
  };
}
