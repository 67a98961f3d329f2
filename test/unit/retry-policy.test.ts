/**
 * The one retry formula and its table: the waits of every named policy, the cap, the BullMQ job options, and
 * that BullMQ's exponential backoff computes the same wait as `delayMs` for those options. The unit tier does
 * not load bullmq, so that last check runs against BullMQ 6's formula as written out below.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import type { ApiOutcome } from '../../src/execution/classify.js';
import { delayMs, jobRetryOptions, RETRY_POLICIES, type RetryPolicy, type RetryPolicyName } from '../../src/domain/retry-policy.js';
import { openChatQuerySource } from '../../src/schedule/chat-source.js';
import { enqueueFinalize, enqueueNotify, type JobPolicy, unassignJobOptions } from '../../src/store/queue.js';
import { DEFAULTS } from '../../src/config/config.js';

const at = (r: number) => () => r;

describe('RETRY_POLICIES', () => {
  it("starts unassign jobs and page listings with MAX_ATTEMPTS's default", () => {
    expect([RETRY_POLICIES.unassign.attempts, RETRY_POLICIES.chatPage.attempts]).toEqual([DEFAULTS.maxAttempts, DEFAULTS.maxAttempts]);
  });

  it.each<[RetryPolicyName, Partial<RetryPolicy>]>([
    ['unassign', { attempts: DEFAULTS.maxAttempts, baseMs: 1000, jitter: { from: 0.5, to: 1 } }],
    ['rateLimited', { attempts: 21, baseMs: 1000, capMs: 60_000, jitter: { from: 0.75, to: 1.25 } }],
    ['finalize', { attempts: 5, baseMs: 1000, jitter: { from: 1, to: 1 } }],
    ['notify', { attempts: 12, baseMs: 1000, jitter: { from: 0.5, to: 1 } }],
    ['chatPage', { attempts: DEFAULTS.maxAttempts, baseMs: 1000, jitter: { from: 0.75, to: 1.25 } }],
  ])('%s', (name, policy) => {
    expect(RETRY_POLICIES[name]).toStrictEqual(policy);
  });
});

describe('delayMs', () => {
  // [policy, retry, wait with random() = 0, 0.5, 1]
  const TABLE: readonly [RetryPolicyName, number, readonly [number, number, number]][] = [
    ['unassign', 1, [500, 750, 1000]],
    ['unassign', 2, [1000, 1500, 2000]],
    ['unassign', 3, [2000, 3000, 4000]],
    ['unassign', 4, [4000, 6000, 8000]],
    ['rateLimited', 1, [750, 1000, 1250]],
    ['rateLimited', 2, [1500, 2000, 2500]],
    ['rateLimited', 6, [24_000, 32_000, 40_000]],
    ['rateLimited', 7, [45_000, 60_000, 75_000]], // 64 s nominal, capped at 60 s before the jitter
    ['rateLimited', 20, [45_000, 60_000, 75_000]],
    ['finalize', 1, [1000, 1000, 1000]],
    ['finalize', 2, [2000, 2000, 2000]],
    ['finalize', 4, [8000, 8000, 8000]],
    ['notify', 1, [500, 750, 1000]],
    ['notify', 2, [1000, 1500, 2000]],
    ['notify', 11, [512_000, 768_000, 1_024_000]], // the last retry of 12 attempts
    ['chatPage', 1, [750, 1000, 1250]],
    ['chatPage', 2, [1500, 2000, 2500]],
    ['chatPage', 7, [48_000, 64_000, 80_000]], // no cap
  ];

  it.each(TABLE)('%s, retry %i → %j', (name, retry, [low, mid, high]) => {
    const policy = RETRY_POLICIES[name];
    expect([delayMs(policy, retry, at(0)), delayMs(policy, retry, at(0.5)), delayMs(policy, retry, at(1))]).toEqual([low, mid, high]);
  });

  it('counts a retry below 1 as the first, and rounds down to whole milliseconds', () => {
    expect(delayMs(RETRY_POLICIES.rateLimited, 0, at(0.5))).toBe(1000);
    expect(delayMs(RETRY_POLICIES.rateLimited, -3, at(0.5))).toBe(1000);
    expect(delayMs(RETRY_POLICIES.rateLimited, 1, at(0.999999))).toBe(1249);
    expect(delayMs({ attempts: 3, baseMs: 3, jitter: { from: 0.5, to: 1 } }, 1, at(0.5))).toBe(2); // 2.25
  });

  it('never leaves [nominal × from, nominal × to], and never exceeds cap × to', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(RETRY_POLICIES) as RetryPolicyName[])),
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (name, retry, r) => {
          const p = RETRY_POLICIES[name];
          const nominal = Math.min(p.capMs ?? Infinity, p.baseMs * 2 ** (retry - 1));
          const wait = delayMs(p, retry, at(r));
          return wait >= Math.floor(nominal * p.jitter.from) && wait <= nominal * p.jitter.to && wait <= (p.capMs ?? Infinity) * p.jitter.to;
        },
      ),
    );
  });
});

describe('jobRetryOptions (BullMQ built-in exponential backoff)', () => {
  it.each<[RetryPolicyName, ReturnType<typeof jobRetryOptions>]>([
    ['unassign', { attempts: DEFAULTS.maxAttempts, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 } }],
    ['finalize', { attempts: 5, backoff: { type: 'exponential', delay: 1000 } }],
    ['notify', { attempts: 12, backoff: { type: 'exponential', delay: 1000, jitter: 0.5 } }],
  ])('%s', (name, options) => {
    expect(jobRetryOptions(RETRY_POLICIES[name])).toStrictEqual(options);
  });

  it.each<RetryPolicyName>(['rateLimited', 'chatPage'])('refuses %s: BullMQ has no cap and no upward jitter', (name) => {
    expect(() => jobRetryOptions(RETRY_POLICIES[name])).toThrow(/cannot run as BullMQ exponential backoff/);
  });

  /**
   * What BullMQ waits before retry `attemptsMade` for these options when Math.random() returns `r`: bullmq 6's
   * `Backoffs.builtinStrategies.exponential`, operation for operation.
   */
  function bullmqWait(options: ReturnType<typeof jobRetryOptions>, attemptsMade: number, r: number): number {
    const { delay, jitter = 0 } = options.backoff;
    if (jitter > 0) {
      const maxDelay = Math.round(Math.pow(2, attemptsMade - 1) * delay);
      const minDelay = maxDelay * (1 - jitter);
      return Math.floor(r * maxDelay * jitter + minDelay);
    }
    return Math.round(Math.pow(2, attemptsMade - 1) * delay);
  }

  it("BullMQ's formula waits exactly delayMs for every named job policy, every retry, at these random numbers", () => {
    for (const name of ['unassign', 'finalize', 'notify'] as const) {
      const policy = RETRY_POLICIES[name];
      for (let retry = 1; retry < policy.attempts; retry += 1) {
        for (const r of [0, 0.1, 0.25, 1 / 3, 0.5, 0.7, 0.999999, 1 - Number.EPSILON / 2]) {
          expect([name, retry, r, bullmqWait(jobRetryOptions(policy), retry, r)]).toEqual([name, retry, r, delayMs(policy, retry, at(r))]);
        }
      }
    }
  });

  it('... and for any base, jitter and random number (same operations, same order)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (baseMs, from, retry, r) => {
          const policy: RetryPolicy = { attempts: 50, baseMs, jitter: { from, to: 1 } };
          return bullmqWait(jobRetryOptions(policy), retry, r) === delayMs(policy, retry, at(r));
        },
      ),
    );
  });

  it('unassign jobs keep the options they had, key for key and in the same order', () => {
    const policy: JobPolicy = { maxAttempts: 3, backoffDelayMs: 1000 };
    const options = unassignJobOptions('20261126-020000-ab12cd', 'p:919812345678@919000000000', 0, policy);
    expect(JSON.stringify(options)).toBe(
      JSON.stringify({
        jobId: options.jobId,
        priority: 1,
        attempts: 3,
        backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: true,
      }),
    );
  });

  it('finalize and notify jobs keep the options they had, key for key and in the same order', async () => {
    const added: unknown[] = [];
    const queue = { add: async (_name: string, _data: unknown, opts: unknown) => void added.push(opts) } as unknown as Parameters<typeof enqueueFinalize>[0];
    await enqueueFinalize(queue, 'b1');
    await enqueueNotify(queue, { batchId: 'b1' } as Parameters<typeof enqueueNotify>[1]);
    expect(added.map((o) => JSON.stringify(o))).toEqual([
      JSON.stringify({ jobId: 'b1-finalize', removeOnComplete: true, removeOnFail: 100, attempts: 5, backoff: { type: 'exponential', delay: 1000 } }),
      JSON.stringify({
        jobId: 'b1-notify',
        attempts: 12,
        backoff: { type: 'exponential', delay: 1000, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: 100,
      }),
    ]);
  });
});

describe('GET /chats pages retry by the policies', () => {
  const status = (statusCode: number): ApiOutcome => ({ kind: 'response', statusCode, body: { statusCode, message: 'x' }, latencyMs: 1 });

  function listing(answers: ApiOutcome[], random = 0.5) {
    const pauses: number[] = [];
    const sleeps: number[] = [];
    let calls = 0;
    const source = openChatQuerySource({
      api: { listChats: async () => ((calls += 1), answers.shift() ?? status(500)) },
      rule: { chatStatus: 'done' },
      now: Date.now(),
      pace: async () => undefined,
      rateLimit: async (ms) => void pauses.push(ms),
      maxAttempts: 4,
      backoffDelayMs: 100,
      sleep: async (ms) => void sleeps.push(ms),
      random: () => random,
    });
    const read = async () => {
      for await (const row of source.rows()) void row;
    };
    return { read, pauses, sleeps, calls: () => calls };
  }

  it('5xx: chatPage waits from the configured base, then gives up after MAX_ATTEMPTS calls', async () => {
    const t = listing([], 0);
    await expect(t.read()).rejects.toThrow(/GET \/chats failed 4 time\(s\)/);
    expect(t.sleeps).toEqual([75, 150, 300]);
    expect(t.calls()).toBe(4);
  });

  it('429 without Retry-After: everyone pauses per rateLimited, 20 times, then the listing gives up', async () => {
    const t = listing(Array.from({ length: 30 }, () => status(429)));
    await expect(t.read()).rejects.toThrow(/still rate limited after 20 waits/);
    expect(t.pauses).toEqual(Array.from({ length: 20 }, (_, i) => delayMs(RETRY_POLICIES.rateLimited, i + 1, at(0.5))));
    expect(t.pauses.slice(0, 3)).toEqual([1000, 2000, 4000]);
    expect(t.sleeps).toEqual([]);
    expect(t.calls()).toBe(21);
  });

  it("429s do not use up the page's attempts, nor 5xx the 429 budget", async () => {
    const t = listing([status(503), status(429), status(503), status(429), status(503), status(429), status(503)]);
    await expect(t.read()).rejects.toThrow(/failed 4 time\(s\)/);
    expect(t.sleeps).toEqual([100, 200, 400]);
    expect(t.pauses).toEqual([1000, 2000, 4000]);
  });
});
