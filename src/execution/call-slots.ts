/**
 * Call slots: WORKER_CONCURRENCY is the number of API calls a worker process has in flight, not the number of
 * jobs it holds. A job takes a call slot for its claim and its call, and gives it back before its bookkeeping
 * (recording the answer, BullMQ completing the job and handing over the next one), so that bookkeeping never
 * leaves the API with fewer calls in flight than configured.
 */
import pLimit from 'p-limit';

/**
 * Jobs a worker process holds at once (BullMQ's concurrency) for WORKER_CONCURRENCY calls in flight. A chat's
 * bookkeeping after its call (the record, BullMQ completing the job and handing over the next) takes a round trip
 * or three; were the job to keep its call slot through it, the API would have fewer calls in flight than
 * configured, a few ms in every call's cycle. The extra jobs wait for a call slot (`makeCallSlots`) before their
 * claim, so they have counted nothing, and a process that dies leaves them to be re-run like any active job.
 */
export function jobsHeldFor(workerConcurrency: number): number {
  return workerConcurrency + Math.max(1, Math.ceil(workerConcurrency / 4));
}

/** A job's claim-to-answer step runs under one of `workerConcurrency` call slots (p-limit), in arrival order. */
export function makeCallSlots(workerConcurrency: number): <T>(step: () => Promise<T>) => Promise<T> {
  const limit = pLimit(workerConcurrency);
  return async (step) => limit(step);
}
