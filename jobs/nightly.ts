/**
 * The `nightly` job processor: one tick of a schedule (made by its BullMQ job scheduler, see
 * src/schedule/store.ts). Runs the schedule (src/schedule/run.ts) and applies the overlap rule when the
 * previous scheduled run is still going:
 *  - skip: log the skipped tick and note it in the report of the batch it skipped for;
 *  - wait: park this job in BullMQ's delayed set (it holds no worker slot while it waits) and run when the
 *    previous batches settle. It is woken when a scheduled batch finishes, with a slow poll as a safety net.
 *    At most one run waits per schedule, and it goes first: a later tick that finds one waiting is skipped,
 *    even if the previous batches have just settled (the waiter, not the newcomer, takes the inbox files).
 */
import { DelayedError, type Job, type Queue } from 'bullmq';

import { MINUTE } from '../src/config/config.js';
import type { QueueJobData, ScheduleJobData } from '../src/store/queue.js';
import { tickOfJob, type WaitingRun } from '../src/schedule/store.js';
import { busyReason, localTime, recordSkip, type RunDeps, type RunRequest, runSchedule } from '../src/schedule/run.js';

/** How often a waiting run re-checks on its own, in case no finishing batch woke it (a crash at the wrong moment). */
export const WAIT_POLL_MS = MINUTE;

export interface NightlyDeps extends RunDeps {
  readonly queue: Queue<QueueJobData>;
  /** @default WAIT_POLL_MS */
  readonly waitPollMs?: number;
}

/** Another job already waiting to run this schedule (alive in BullMQ), if any. */
async function otherWaiter(deps: NightlyDeps, name: string, selfId: string): Promise<WaitingRun | undefined> {
  const current = await deps.schedules.waiting(name);
  if (!current || current.jobId === selfId) return undefined;
  const job = await deps.queue.getJob(current.jobId);
  const state = job ? await job.getState() : 'unknown';
  return ['delayed', 'waiting', 'prioritized', 'active'].includes(state) ? current : undefined;
}

export function makeNightlyProcessor(deps: NightlyDeps): (job: Job<ScheduleJobData>, token?: string) => Promise<string> {
  return async (job, token) => {
    const definition = await deps.schedules.get(job.data.s);
    if (!definition) return 'no-schedule'; // removed after this tick was planned
    const jobId = job.id as string;
    const request: RunRequest = { definition, tick: tickOfJob(job), owner: jobId, ...(job.data.w ? { waited: job.data.w } : {}) };
    const name = definition.name;

    // The waiting run goes first: a newer tick must not take the sources (inbox files) it waited for.
    const waiter = definition.overlap === 'wait' ? await otherWaiter(deps, name, jobId) : undefined;
    if (waiter) {
      await recordSkip(
        deps,
        request,
        { blockedBy: `the run for ${localTime(waiter.tick, definition.tz)} is waiting to start`, blockingBatchIds: [] },
        '--overlap wait',
      );
      return 'skipped';
    }

    const result = await runSchedule(deps, request);
    if (result.kind === 'done') return result.run.outcome;
    if (definition.overlap === 'skip') {
      await recordSkip(deps, request, result);
      return 'skipped';
    }
    if ((await deps.schedules.waiting(name))?.jobId !== jobId) await deps.schedules.setWaiting(name, { jobId, tick: request.tick, since: Date.now() });
    await job.updateData({ ...job.data, w: job.data.w ?? { since: Date.now(), blockedBy: result.blockedBy } });
    await job.moveToDelayed(Date.now() + (deps.waitPollMs ?? WAIT_POLL_MS), token);
    // The previous run may have ended between the check above and the move: then nobody would wake us.
    if ((await busyReason(deps, name)) === '') await job.promote().catch(() => undefined);
    throw new DelayedError();
  };
}
