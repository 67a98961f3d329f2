/**
 * The `unassign` job processor: one chat, one HTTP call per attempt, one terminal result.
 *
 *   claim (skip chats already recorded, park chats of paused/stopped batches)
 *   → call the API → classify → record | retry | pause everyone (429) | stop the batch (401/403)
 *
 * Redis steps are waited out when Redis cannot serve them (full, loading, unreachable): an outage is never a
 * failed attempt of the chat, and a result the API already gave is held and written once Redis takes it.
 */
import { type Job, Worker } from 'bullmq';

import type { DoubleTickApi } from '../src/execution/api-client.js';
import { classify, rateLimitBackoffMs, type Verdict } from '../src/execution/classify.js';
import { type OutageOptions, untilRedisServes } from '../src/execution/outage.js';
import type { BatchStore } from '../src/store/batch-store.js';
import { maskChatKey, type Logger } from '../src/config/logger.js';
import type { UnassignJobData } from '../src/store/queue.js';
import type { ChatResult, ResultStore } from '../src/store/result-store.js';
import { chatFromKey } from '../src/domain/chat.js';

export interface UnassignDeps {
  readonly api: Pick<DoubleTickApi, 'unassign'>;
  readonly results: ResultStore;
  readonly batches: BatchStore;
  readonly logger: Logger;
  /** Pauses every worker of the queue (BullMQ `worker.rateLimit` + the pacer). */
  readonly rateLimit: (ms: number) => Promise<void>;
  /** Waits for this call's slot under the global rate limit (see src/execution/pacer.ts). */
  readonly pace: () => Promise<void>;
  /** Called once, by whoever recorded a batch's last chat: enqueue its report. */
  readonly onBatchComplete: (batchId: string) => Promise<void>;
  /** Called once, by whoever stopped a batch: take its waiting chats off the queue. */
  readonly onBatchStopped: (batchId: string) => Promise<void>;
  /**
   * Whether this worker still holds the job's lock. Asked only after waiting out a Redis outage before the call:
   * the lock may have lapsed meanwhile and the job been handed to another worker, which then makes the call.
   * @default always true
   */
  readonly stillHolds?: (job: Job<UnassignJobData>, token: string | undefined) => Promise<boolean>;
  /** How Redis outages are waited out. @default log to `logger`, back off up to 2 s */
  readonly outage?: Omit<OutageOptions, 'logger'>;
  readonly now?: () => number;
}

/** What a job returned, for BullMQ's `completed` event and tests. `handed-over`: the lock was lost in an outage. */
export type UnassignOutcome = 'succeeded' | 'failed' | 'cancelled' | 'skipped' | 'parked' | 'handed-over';

export function makeUnassignProcessor(deps: UnassignDeps): (job: Job<UnassignJobData>, token?: string) => Promise<UnassignOutcome> {
  const now = deps.now ?? Date.now;
  const outage: OutageOptions = { logger: deps.logger, ...deps.outage };
  const redisStep = async <T>(what: string, step: () => Promise<T>): Promise<{ value: T; waited: boolean }> => untilRedisServes(what, step, outage);
  const redis = async <T>(what: string, step: () => Promise<T>): Promise<T> => (await redisStep(what, step)).value;
  let consecutive429s = 0;

  const finish = async (job: Job<UnassignJobData>, result: ChatResult): Promise<UnassignOutcome> => {
    const outcome = await redis('record result', () => deps.results.record(job.data.b, job.data.k, result));
    if (outcome === 'last') await redis('enqueue report', () => deps.onBatchComplete(job.data.b));
    return outcome === 'duplicate' ? 'skipped' : result.state;
  };

  const failure = (job: Job<UnassignJobData>, verdict: Verdict & { reason: string }, httpStatus: number, latencyMs: number): ChatResult => ({
    state: 'failed',
    httpStatus,
    attempts: job.attemptsMade + 1,
    finishedAt: now(),
    latencyMs,
    failureClass: verdict.kind === 'permanent' ? 'permanent' : 'transient',
    reason: verdict.reason,
  });

  return async (job, token) => {
    const { b: batchId, k: chatKey } = job.data;
    const claimed = await redisStep('claim chat', () => deps.results.claim(batchId, chatKey));
    const claim = claimed.value;
    if (claim === 'done' || claim === 'gone') return 'skipped';
    if (claim === 'parked') return 'parked';
    if (claim === 'cancel') {
      return finish(job, { state: 'cancelled', httpStatus: 0, attempts: 0, finishedAt: now(), latencyMs: 0, reason: 'batch cancelled' });
    }

    const paced = await redisStep('wait for a call slot', deps.pace);
    if ((claimed.waited || paced.waited) && deps.stillHolds && !(await deps.stillHolds(job, token))) {
      deps.logger.warn({ batchId, chat: maskChatKey(chatKey) }, 'lock lost during a Redis outage: the job is left to the worker that holds it now');
      return 'handed-over';
    }
    const outcome = await deps.api.unassign(chatFromKey(chatKey));
    const verdict = classify(outcome, now());
    const httpStatus = outcome.kind === 'response' ? outcome.statusCode : 0;
    switch (verdict.kind) {
      case 'success':
        consecutive429s = 0;
        return finish(job, { state: 'succeeded', httpStatus, attempts: job.attemptsMade + 1, finishedAt: now(), latencyMs: outcome.latencyMs, reason: '' });
      case 'permanent':
        return finish(job, failure(job, verdict, httpStatus, outcome.latencyMs));
      case 'auth': {
        // Not this chat's fault: park it (resume re-runs it) and stop the batch instead of burning every chat.
        await redis('park chat', () => deps.results.park(batchId, chatKey));
        const reason = `API key rejected (${verdict.reason}); fix DOUBLETICK_API_KEY, then \`bulk-unassign resume ${batchId}\``;
        const previous = await redis('stop batch', () => deps.batches.apply(batchId, 'stop', reason));
        if (previous !== undefined) {
          deps.logger.error({ batchId, reason: verdict.reason }, 'API key rejected: batch stopped');
          await redis('park waiting chats', () => deps.onBatchStopped(batchId));
        }
        return 'parked';
      }
      case 'rate_limited': {
        consecutive429s += 1;
        await redis('count 429', () => deps.results.count429(batchId));
        const pauseMs = verdict.retryAfterMs ?? rateLimitBackoffMs(consecutive429s);
        deps.logger.warn({ batchId, pauseMs, retryAfter: verdict.retryAfterMs !== undefined }, '429 from API: pausing all workers');
        // Global: BullMQ's limiter key is shared, so every worker process waits, not just this one.
        await redis('pause all workers', () => deps.rateLimit(pauseMs));
        throw Worker.RateLimitError();
      }
      case 'transient': {
        if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
          return finish(job, failure(job, verdict, httpStatus, outcome.latencyMs));
        }
        deps.logger.info({ batchId, chat: maskChatKey(chatKey), attempt: job.attemptsMade + 1, reason: verdict.reason }, 'transient failure: will retry');
        throw new Error(verdict.reason);
      }
    }
  };
}
