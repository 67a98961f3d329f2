/**
 * The `unassign` job processor: one chat, one HTTP call per attempt, one terminal result.
 *
 *   under a call slot: claim (skip chats already recorded, park chats of paused/stopped batches)
 *                      → pace → count the call → call the API
 *   then, the slot given back: classify
 *   → record | retry | pause everyone (429) | stop the batch (401/403, not the API answering, 429s for too long)
 *
 * Redis steps are waited out when Redis cannot serve them (full, loading, unreachable): an outage is never a
 * failed attempt of the chat, and a result the API already gave is held and written once Redis takes it.
 *
 * One processor for both directions, by the batch's `action` (read once per batch and process, it never changes):
 * an unassigning batch calls POST /team-member/unassign; a restore (and its reruns) calls POST /team-member/assign
 * with the chat's kept agent and `reassign: false`, and a chat someone assigned since is `skipped` (classifyAssign).
 * With --capture-assignees the unassign call is preceded by GET /customer/details under its own call slot: the
 * agent is kept for a restore, and a chat found without one is `skipped: already unassigned`, not called.
 *
 * Attempts are the calls made, counted in Redis right before each call (result-store.ts `countCall`), not
 * BullMQ's `attemptsMade`: a job re-run after its worker died, or after its lock lapsed, made a call BullMQ
 * never counted. The record step takes the count as the result's attempts.
 */
import { type Job, Worker } from 'bullmq';

import type { DoubleTickApi } from '../src/execution/api-client.js';
import { type CallSlot, CallSlotWithdrawnError } from '../src/execution/call-slots.js';
import { agentInDetails, type ApiOutcome, type AssignVerdict, classify, classifyAssign, rateLimitBackoffMs, type Verdict } from '../src/execution/classify.js';
import { type OutageOptions, untilRedisServes } from '../src/execution/outage.js';
import type { BatchStore } from '../src/store/batch-store.js';
import { maskChatKey, type Logger } from '../src/config/logger.js';
import type { UnassignJobData } from '../src/store/queue.js';
import type { ChatResult, ClaimOutcome, ResultStore } from '../src/store/result-store.js';
import { chatFromKey, type ChatTarget } from '../src/domain/chat.js';
import type { BatchAction } from '../src/store/codecs.js';

export interface UnassignDeps {
  /** `assign` is needed for restore batches, `customerDetails` for batches that capture agents. */
  readonly api: Pick<DoubleTickApi, 'unassign'> & Partial<Pick<DoubleTickApi, 'assign' | 'customerDetails'>>;
  readonly results: ResultStore;
  readonly batches: BatchStore;
  readonly logger: Logger;
  /** Pauses every worker of the queue (BullMQ `worker.rateLimit` + the pacer). */
  readonly rateLimit: (ms: number) => Promise<void>;
  /** Waits for this call's slot under the global rate limit (see src/execution/pacer.ts). */
  readonly pace: () => Promise<void>;
  /**
   * The pacer gives no call slots (RATE_LIMIT_MAX 0: it only holds calls through a 429 pause), so the call follows
   * the claim at once: the claim step counts it too (`claimCall`), one Redis round trip per chat instead of two.
   * Only a 429 pause can come between that count and the call; a process that dies during one leaves a call counted
   * that was not made (attempts one high for that chat), as a death right after any count would.
   * @default false (claim, wait for the slot, then count the call right before it)
   */
  readonly countOnClaim?: boolean;
  /**
   * Runs a chat's claim, pace, call count and API call(s) under one of the process's WORKER_CONCURRENCY call slots
   * (call-slots.ts); recording the answer happens after the slot is given back, so the API is never left with
   * fewer calls in flight because a chat's bookkeeping holds a slot.
   * @default runs the step at once (the caller limits concurrency itself)
   */
  readonly callSlot?: CallSlot;
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
  /**
   * A batch whose calls get nothing but 429 for this long (from the first 429, no success since) is stopped,
   * resumable (MAX_RATE_LIMIT_WAIT_MINUTES). 0 = wait for ever. @default 0
   */
  readonly maxRateLimitWaitMs?: number;
  /** How Redis outages are waited out. @default log to `logger`, back off up to 2 s */
  readonly outage?: Omit<OutageOptions, 'logger'>;
  readonly now?: () => number;
}

/** What a job returned, for BullMQ's `completed` event and tests. `handed-over`: the lock was lost in an outage. */
export type UnassignOutcome = 'succeeded' | 'failed' | 'cancelled' | 'skipped' | 'parked' | 'handed-over';

/**
 * A 429 that comes this long after the batch's last pause ended starts a new run of 429s. Within a run the next
 * call follows the end of a pause within a second or two (a call slot, one request); a longer gap means the
 * batch was paused, stopped or had no worker, and nothing says the API kept refusing meanwhile.
 */
export const RATE_LIMIT_RUN_GAP_MS = 60_000;

/** What a batch does to each of its chats: fixed when the batch is made. */
interface BatchMode {
  readonly action: BatchAction;
  readonly captureAssignees: boolean;
}

/** Batches whose mode a process remembers; past it the memory starts over (a read per batch, not per chat). */
const MODES_KEPT = 1000;

/** Reason of a chat found without an agent right before its unassign (--capture-assignees): no call made. */
export const ALREADY_UNASSIGNED = 'already unassigned';
/** Reason of a group chat in a capturing batch whose agent its source did not give. */
export const GROUP_NOT_CAPTURED =
  'group chat: its agent cannot be read (GET /customer/details takes a phone number), so it was not unassigned — give its agent in the file, or run it without --capture-assignees';

/** Minutes as an operator wrote them: 60, 0.05. */
function minutesText(ms: number): string {
  return String(Math.round((ms / 60_000) * 1000) / 1000);
}

export function makeUnassignProcessor(deps: UnassignDeps): (job: Job<UnassignJobData>, token?: string) => Promise<UnassignOutcome> {
  const now = deps.now ?? Date.now;
  const outage: OutageOptions = { logger: deps.logger, ...deps.outage };
  const redisStep = async <T>(what: string, step: () => Promise<T>): Promise<{ value: T; waited: boolean }> => untilRedisServes(what, step, outage);
  const redis = async <T>(what: string, step: () => Promise<T>): Promise<T> => (await redisStep(what, step)).value;
  const maxRateLimitWaitMs = deps.maxRateLimitWaitMs ?? 0;
  let consecutive429s = 0;

  const finish = async (job: Job<UnassignJobData>, result: ChatResult): Promise<UnassignOutcome> => {
    const outcome = await redis('record result', () => deps.results.record(job.data.b, job.data.k, result));
    if (outcome === 'last') await redis('enqueue report', () => deps.onBatchComplete(job.data.b));
    return outcome === 'duplicate' ? 'skipped' : result.state;
  };

  const failure = (verdict: Verdict & { reason: string }, attempts: number, httpStatus: number, latencyMs: number): ChatResult => ({
    state: 'failed',
    httpStatus,
    attempts,
    finishedAt: now(),
    latencyMs,
    failureClass: verdict.kind === 'permanent' ? 'permanent' : 'transient',
    reason: verdict.reason,
  });

  const holds = async (job: Job<UnassignJobData>, token: string | undefined): Promise<boolean> => (deps.stillHolds ? deps.stillHolds(job, token) : true);

  const modes = new Map<string, BatchMode>();
  const modeOf = async (batchId: string): Promise<BatchMode> => {
    const known = modes.get(batchId);
    if (known) return known;
    const batch = await redis('read the batch', () => deps.batches.get(batchId));
    const mode: BatchMode = { action: batch?.action ?? 'unassign', captureAssignees: batch?.captureAssignees ?? false };
    if (modes.size >= MODES_KEPT) modes.clear();
    modes.set(batchId, mode);
    return mode;
  };

  /** A result with no failure: `succeeded` or `skipped`, with a reason when there is one to tell. */
  const settled = (state: 'succeeded' | 'skipped', attempts: number, outcome: ApiOutcome | undefined, reason: string): ChatResult => ({
    state,
    httpStatus: outcome?.kind === 'response' ? outcome.statusCode : 0,
    attempts,
    finishedAt: now(),
    latencyMs: outcome?.latencyMs ?? 0,
    reason,
  });

  /** What the API call step hands on: an answer for the verdict table, or the job's end (no unassign call to make). */
  type Called = { readonly outcome: ApiOutcome; readonly verdict: Verdict | AssignVerdict; readonly calls: number } | { readonly done: UnassignOutcome };

  /**
   * --capture-assignees, before an unassign call: the chat's agent is read (this call used the slot and count the
   * job took), kept for a restore, and the unassign call takes a slot and count of its own. A chat without an
   * agent is not called. An answer that is not a success goes to the verdict table like an unassign's (429,
   * a rejected key, retries), its reason saying it was the read.
   */
  const captureThenUnassign = async (job: Job<UnassignJobData>, token: string | undefined, chat: ChatTarget, calls: number): Promise<Called> => {
    const { b: batchId, k: chatKey } = job.data;
    const api = deps.api;
    if (chat.kind === 'group') {
      if ((await redis('read the agent', () => deps.results.agentOf(batchId, chatKey))) !== undefined) return unassign(chat, calls);
      await redis('take the call count back', () => deps.results.countCall(batchId, chatKey, -1));
      return { done: await finish(job, settled('skipped', 0, undefined, GROUP_NOT_CAPTURED)) };
    }
    if (!api.customerDetails) throw new Error('this worker cannot capture agents: its API client has no customerDetails');
    const details = await api.customerDetails(chat);
    const verdict = classify(details, now(), { misrouted: 'stop' });
    if (verdict.kind !== 'success') {
      const reason = `agent not read, chat not unassigned (GET /customer/details ${verdict.reason})`;
      return { outcome: details, verdict: verdict.kind === 'rate_limited' ? verdict : { ...verdict, reason }, calls };
    }
    const agent = details.kind === 'response' ? agentInDetails(details.body) : undefined;
    if (agent === undefined) {
      const reason = 'agent not read, chat not unassigned: GET /customer/details answered without customer.assignedUserNumber (has the API changed?)';
      return { outcome: details, verdict: { kind: 'permanent', reason }, calls };
    }
    if (agent === null) {
      // An earlier attempt of this batch kept an agent and called unassign, whose answer was lost (a timeout, a
      // 5xx after the change): that call did it.
      const earlier = await redis('read the agent', () => deps.results.agentOf(batchId, chatKey));
      const result =
        earlier === undefined
          ? settled('skipped', calls, details, ALREADY_UNASSIGNED)
          : settled('succeeded', calls, details, 'already unassigned by an earlier attempt of this batch, whose answer was lost');
      return { done: await finish(job, result) };
    }
    await redis('keep the agent', () => deps.results.keepAgent(batchId, chatKey, agent));
    const paced = await redisStep('wait for a call slot', deps.pace);
    if (paced.waited && !(await holds(job, token))) return { done: handedOver(batchId, chatKey) };
    const counted = await redisStep('count the call', () => deps.results.countCall(batchId, chatKey));
    if (counted.waited) {
      if (!(await holds(job, token))) {
        await redis('take the call count back', () => deps.results.countCall(batchId, chatKey, -1));
        return { done: handedOver(batchId, chatKey) };
      }
      await redis('wait for a call slot', deps.pace);
    }
    return unassign(chat, counted.value);
  };

  const unassign = async (chat: ChatTarget, calls: number): Promise<Called> => {
    const outcome = await deps.api.unassign(chat);
    return { outcome, verdict: classify(outcome, now(), { misrouted: 'stop' }), calls };
  };

  /** A restore's call: the chat back to its kept agent, never taking it from an agent it has now. */
  const assignBack = async (job: Job<UnassignJobData>, chat: ChatTarget, calls: number): Promise<Called> => {
    const { b: batchId, k: chatKey } = job.data;
    if (!deps.api.assign) throw new Error('this worker cannot restore: its API client has no assign');
    const agent = await redis('read the agent', () => deps.results.agentOf(batchId, chatKey));
    if (agent === undefined) {
      await redis('take the call count back', () => deps.results.countCall(batchId, chatKey, -1));
      const reason = 'no agent kept for this chat: nothing to assign it back to';
      return { done: await finish(job, { state: 'failed', httpStatus: 0, attempts: 0, finishedAt: now(), latencyMs: 0, failureClass: 'permanent', reason }) };
    }
    const outcome = await deps.api.assign(chat, agent, { reassign: false });
    return { outcome, verdict: classifyAssign(outcome, now(), { misrouted: 'stop' }), calls };
  };

  const handedOver = (batchId: string, chatKey: string): UnassignOutcome => {
    deps.logger.warn({ batchId, chat: maskChatKey(chatKey) }, 'lock lost during a Redis outage: the job is left to the worker that holds it now');
    return 'handed-over';
  };

  /**
   * Not this chat's fault: park it (resume re-runs it) and stop the batch instead of burning every chat. Whoever
   * made the stop (once per batch: it is a compare-and-set) runs `onStopped`, then takes the batch's waiting
   * chats off the queue.
   */
  const stopBatch = async (
    batchId: string,
    chatKey: string,
    reason: string,
    log: { message: string; reason: string },
    onStopped?: () => Promise<void>,
  ): Promise<UnassignOutcome> => {
    await redis('park chat', () => deps.results.park(batchId, chatKey));
    const previous = await redis('stop batch', () => deps.batches.apply(batchId, 'stop', reason));
    if (previous !== undefined) {
      deps.logger.error({ batchId, reason: log.reason }, log.message);
      if (onStopped) await onStopped();
      await redis('park waiting chats', () => deps.onBatchStopped(batchId));
    }
    return 'parked';
  };

  /** From the claim to the API's answer: the part of a job that holds a call slot. */
  const claimAndCall = async (job: Job<UnassignJobData>, token: string | undefined): Promise<Called> => {
    const { b: batchId, k: chatKey } = job.data;
    const claimed = await redisStep('claim chat', (): Promise<ClaimOutcome | number> =>
      deps.countOnClaim ? deps.results.claimCall(batchId, chatKey) : deps.results.claim(batchId, chatKey),
    );
    const claim = claimed.value;
    if (claim === 'done' || claim === 'gone') return { done: 'skipped' };
    if (claim === 'parked') return { done: 'parked' };
    if (claim === 'cancel') {
      return { done: await finish(job, { state: 'cancelled', httpStatus: 0, attempts: 0, finishedAt: now(), latencyMs: 0, reason: 'batch cancelled' }) };
    }

    const paced = await redisStep('wait for a call slot', deps.pace);
    if ((claimed.waited || paced.waited) && !(await holds(job, token))) {
      // The call is the new holder's: a count the claim made goes back.
      if (typeof claim === 'number') await redis('take the call count back', () => deps.results.countCall(batchId, chatKey, -1));
      return { done: handedOver(batchId, chatKey) };
    }
    const counted =
      typeof claim === 'number' ? { value: claim, waited: false } : await redisStep('count the call', () => deps.results.countCall(batchId, chatKey));
    if (counted.waited) {
      // Redis was out between the call's slot and the call. The lock may have lapsed: then the call is the new
      // holder's, and the count goes back. And the slot is stale (a call made now could bunch with the calls
      // admitted since): take a new one.
      if (!(await holds(job, token))) {
        await redis('take the call count back', () => deps.results.countCall(batchId, chatKey, -1));
        return { done: handedOver(batchId, chatKey) };
      }
      await redis('wait for a call slot', deps.pace);
    }
    const calls = counted.value;
    const chat = chatFromKey(chatKey);
    const mode = await modeOf(batchId);
    return mode.action === 'assign'
      ? assignBack(job, chat, calls)
      : mode.captureAssignees
        ? captureThenUnassign(job, token, chat, calls)
        : unassign(chat, calls);
  };

  const callSlot: CallSlot = deps.callSlot ?? (async (step) => step());

  return async (job, token) => {
    const { b: batchId, k: chatKey } = job.data;
    let called: Called;
    try {
      called = await callSlot(async () => claimAndCall(job, token));
    } catch (error) {
      // The process is stopping and this job never reached its claim: back to the queue, no attempt spent.
      if (error instanceof CallSlotWithdrawnError) throw Worker.RateLimitError();
      throw error;
    }
    if ('done' in called) return called.done;
    const { outcome, verdict } = called;
    const attempts = called.calls;
    const httpStatus = outcome.kind === 'response' ? outcome.statusCode : 0;
    switch (verdict.kind) {
      case 'success':
        consecutive429s = 0;
        return finish(job, { state: 'succeeded', httpStatus, attempts, finishedAt: now(), latencyMs: outcome.latencyMs, reason: '' });
      case 'skipped':
        consecutive429s = 0;
        return finish(job, settled('skipped', attempts, outcome, verdict.reason));
      case 'permanent':
        return finish(job, failure(verdict, attempts, httpStatus, outcome.latencyMs));
      case 'auth': {
        const reason = `API key rejected (${verdict.reason}); fix DOUBLETICK_API_KEY, then \`bulk-unassign resume ${batchId}\``;
        return stopBatch(batchId, chatKey, reason, { message: 'API key rejected: batch stopped', reason: verdict.reason });
      }
      case 'misrouted': {
        // Never counted as unassigned: whatever answered, it was not the API.
        const reason = `${verdict.reason}, then \`bulk-unassign resume ${batchId}\``;
        return stopBatch(batchId, chatKey, reason, { message: 'not the API answering: batch stopped', reason: verdict.reason });
      }
      case 'rate_limited': {
        consecutive429s += 1;
        const asked = verdict.retryAfterMs ?? rateLimitBackoffMs(consecutive429s);
        const at = now();
        const run = await redis('count 429', () =>
          deps.results.count429(batchId, chatKey, { now: at, pauseMs: asked, maxRunMs: maxRateLimitWaitMs, gapMs: RATE_LIMIT_RUN_GAP_MS }),
        );
        if (maxRateLimitWaitMs > 0 && run.since !== undefined && at - run.since >= maxRateLimitWaitMs) {
          const reason = `the API answered 429 for ${minutesText(maxRateLimitWaitMs)} minutes (MAX_RATE_LIMIT_WAIT_MINUTES): resume when the limit is lifted, \`bulk-unassign resume ${batchId}\``;
          // A resume starts a new run of 429s.
          return stopBatch(batchId, chatKey, reason, { message: 'rate limited for too long: batch stopped', reason }, () =>
            redis('end the run of 429s', () => deps.results.endRateLimitRun(batchId)),
          );
        }
        // Retry-After is honoured, but the pause ends where the run would reach its limit: the call after it decides.
        const pauseMs = Math.max(1, run.pauseUntil - at);
        deps.logger.warn({ batchId, pauseMs, retryAfter: verdict.retryAfterMs !== undefined }, '429 from API: pausing all workers');
        // Global: BullMQ's limiter key is shared, so every worker process waits, not just this one.
        await redis('pause all workers', () => deps.rateLimit(pauseMs));
        throw Worker.RateLimitError();
      }
      case 'transient': {
        if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
          return finish(job, failure(verdict, attempts, httpStatus, outcome.latencyMs));
        }
        // Another copy of this job (one whose lock lapsed) may have recorded the chat while this call was out: then
        // there is nothing to retry, and the claim adds this call to the batch's attempts.
        const again = await redis('check the chat before a retry', () => deps.results.claim(batchId, chatKey));
        if (again === 'done' || again === 'gone') return 'skipped';
        deps.logger.info({ batchId, chat: maskChatKey(chatKey), attempt: job.attemptsMade + 1, reason: verdict.reason }, 'transient failure: will retry');
        throw new Error(verdict.reason);
      }
    }
  };
}
