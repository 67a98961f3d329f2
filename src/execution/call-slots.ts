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

/** Thrown to a step that was waiting for a call slot when the process began to stop: it never ran. */
export class CallSlotWithdrawnError extends Error {
  constructor() {
    super('the worker is stopping: this job was given back before its call');
    this.name = 'CallSlotWithdrawnError';
  }
}

/** Runs a job's claim-to-answer step under one of the slots, in arrival order. */
export type CallSlot = <T>(step: () => Promise<T>) => Promise<T>;

export interface CallSlots {
  readonly take: CallSlot;
  /**
   * The process is stopping: steps still waiting for a slot, and any asked for from now on, are refused with
   * CallSlotWithdrawnError (their jobs go back to the queue untouched); steps holding a slot finish.
   */
  withdrawWaiting(): void;
}

export function makeCallSlots(workerConcurrency: number): CallSlots {
  const limit = pLimit({ concurrency: workerConcurrency, rejectOnClear: true });
  let withdrawn = false;
  return {
    take: async (step) => {
      if (withdrawn) throw new CallSlotWithdrawnError();
      let started = false;
      try {
        return await limit(async () => {
          started = true;
          return step();
        });
      } catch (error) {
        // p-limit refuses the steps it cleared (never started); a step's own errors pass through as they are.
        if (!started) throw new CallSlotWithdrawnError();
        throw error;
      }
    },
    withdrawWaiting: () => {
      withdrawn = true;
      limit.clearQueue();
    },
  };
}
