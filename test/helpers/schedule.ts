/**
 * Helpers for schedule tests: the schedule store of a context, a second "process" (its own context, Redis
 * connections and worker) that can be closed on its own, and waiting for a schedule's runs or for its queued
 * jobs to drain.
 */
import type { Context } from '../../src/runtime/context.js';
import { makeContext } from '../../src/runtime/context.js';
import { silentLogger } from '../../src/config/logger.js';
import { JOB_NIGHTLY, JOB_NOTIFY } from '../../src/store/queue.js';
import { makeScheduleStore, type ScheduleRun, type ScheduleStore } from '../../src/schedule/store.js';
import { type RunningWorker, startWorker } from '../../src/execution/worker.js';
import { jobTable } from '../../jobs/index.js';
import type { TestEnv } from './harness.js';
import { eventually } from './eventually.js';

export function scheduleStoreOf(ctx: Context): ScheduleStore {
  return makeScheduleStore(ctx.redis, ctx.keys, ctx.queue);
}

/** A worker with its own context, as a separate process would have; `close()` releases both. */
export interface ExtraWorker {
  readonly ctx: Context;
  readonly worker: RunningWorker;
  close(): Promise<void>;
}

export function startExtraWorker(env: TestEnv): ExtraWorker {
  const ctx = makeContext(env.config, silentLogger());
  const worker = startWorker(ctx, jobTable, { sweepIntervalMs: 1000 });
  let closed = false;
  return {
    ctx,
    worker,
    close: async () => {
      if (closed) return;
      closed = true;
      await worker.close(true);
      await ctx.close();
    },
  };
}

/** Polls `check` until it returns a truthy value (see eventually()). */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  return (await eventually(check, { timeoutMs, intervalMs: 50, message: what })) as T;
}

/** Waits until the schedule has logged at least `n` runs that satisfy `filter`; returns all runs, oldest first. */
export async function waitForRuns(
  store: ScheduleStore,
  name: string,
  n: number,
  filter: (r: ScheduleRun) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<ScheduleRun[]> {
  return waitFor(
    async () => {
      const runs = (await store.runs(name)).reverse();
      return runs.filter(filter).length >= n ? runs : undefined;
    },
    `${n} run(s) of schedule ${name}`,
    timeoutMs,
  );
}

/**
 * Waits until no job of these names is queued, delayed or running. A schedule keeps its next tick as a delayed
 * `nightly` job: remove the schedule first, or wait for `notify` jobs only.
 */
export async function waitForScheduleJobsDrained(ctx: Context, names: readonly string[] = [JOB_NIGHTLY, JOB_NOTIFY], timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const jobs = await ctx.queue.getJobs(['active', 'waiting', 'delayed', 'prioritized']);
      return jobs.every((j) => j === undefined || !names.includes(j.name));
    },
    `${names.join('/')} jobs to drain`,
    timeoutMs,
  );
}
