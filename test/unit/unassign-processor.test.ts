/**
 * jobs/unassign.ts `makeUnassignProcessor` from source, every dependency injected: in-memory result and batch
 * stores (test/unit/fakes/stores.ts, deciding claims, call counts and completion as the Lua steps do), an
 * `api.unassign` stub answering ApiOutcome values, and a plain object shaped like a BullMQ Job. No Redis, no
 * queue, no HTTP. Redis outages are errors the fakes throw with the replies Redis gives ("OOM …").
 */
import { describe, expect, it } from '@jest/globals';
import { type Job, Worker } from 'bullmq';

import { makeUnassignProcessor, RATE_LIMIT_RUN_GAP_MS, type UnassignDeps } from '../../jobs/unassign.js';
import { CallSlotWithdrawnError } from '../../src/execution/call-slots.js';
import type { ApiOutcome } from '../../src/execution/classify.js';
import { type ChatTarget, chatFromKey } from '../../src/domain/chat.js';
import { type BatchStatus, Status } from '../../src/domain/lifecycle.js';
import type { UnassignJobData } from '../../src/store/queue.js';
import type { ChatResult } from '../../src/store/result-store.js';
import { batchRecord, type FakeBatchStore, fakeBatchStore, type FakeResultStore, fakeResultStore } from './fakes/stores.js';
import { LEVEL, type LogLine, memoryLogger } from './fakes/logger.js';

const BATCH = 'b1';
const CHAT = 'p:919876543210@919000000000';
const GROUP = 'g:grp_1';
const NOW = 1_764_030_000_000;
/** What BullMQ's worker recognises as "rate limited, put the job back" (checked by message). */
const RATE_LIMIT = Worker.RateLimitError();

const response = (
  statusCode: number,
  extra: { body?: unknown; retryAfter?: string; latencyMs?: number; location?: string; html?: boolean } = {},
): ApiOutcome => ({
  kind: 'response',
  statusCode,
  body: extra.body,
  latencyMs: extra.latencyMs ?? 12,
  ...(extra.retryAfter === undefined ? {} : { retryAfter: extra.retryAfter }),
  ...(extra.location === undefined ? {} : { location: extra.location }),
  ...(extra.html === undefined ? {} : { html: extra.html }),
});
const network = (code: string): ApiOutcome => ({ kind: 'network', code, message: `request failed: ${code}`, latencyMs: 30 });

/** Only what the processor reads of a BullMQ Job. `attempts` null: no `opts.attempts` (BullMQ then tries once). */
function job(chatKey = CHAT, attemptsMade = 0, attempts: number | null = 3, batchId = BATCH): Job<UnassignJobData> {
  return { data: { b: batchId, k: chatKey }, attemptsMade, opts: attempts === null ? {} : { attempts } } as unknown as Job<UnassignJobData>;
}

interface Rig {
  readonly run: (j: Job<UnassignJobData>, token?: string) => Promise<string>;
  readonly batches: FakeBatchStore;
  readonly results: FakeResultStore;
  /** Chats the stub API was asked to unassign, in order. */
  readonly called: ChatTarget[];
  /** Every side effect, in order: pace, count, api, rateLimit:<ms>, complete:<id>, stopped:<id>. */
  readonly events: string[];
  readonly pauses: number[];
  readonly completed: string[];
  readonly stopped: string[];
  readonly logs: LogLine[];
}

/** What Redis answers while it refuses writes (maxmemory, noeviction): an outage, waited out. */
const OOM = (): Error => new Error("OOM command not allowed when used memory > 'maxmemory'.");

/**
 * A processor over fresh fakes: the batch `valid` chats long in `status`; the API answers `answers` in turn
 * (then 201). `duringCall` runs inside each API call (the world changing while the request is in flight);
 * `holdCalls` keeps every call waiting until that many calls have arrived (requests in flight together).
 * `now`, `maxRateLimitWaitMs` and `stillHolds` go to the processor as they are; outages are retried every ms.
 */
function rig(
  options: {
    status?: BatchStatus;
    valid?: number;
    answers?: readonly ApiOutcome[];
    batch?: boolean;
    duringCall?: () => void;
    holdCalls?: number;
    now?: () => number;
    maxRateLimitWaitMs?: number;
    stillHolds?: UnassignDeps['stillHolds'];
    countOnClaim?: boolean;
    /** Give the processor a call slot that notes `slot:take` and `slot:give` among the events ('withdrawn': refuses). */
    callSlot?: boolean | 'withdrawn';
  } = {},
): Rig {
  const batches = fakeBatchStore(
    options.batch === false ? [] : [batchRecord({ id: BATCH, status: options.status ?? Status.running, counts: { valid: options.valid ?? 10 } })],
  );
  const results = fakeResultStore(batches);
  const countCall = results.countCall.bind(results);
  results.countCall = async (...args) => {
    events.push('count');
    return countCall(...args);
  };
  const claimCall = results.claimCall.bind(results);
  results.claimCall = async (...args) => {
    const outcome = await claimCall(...args);
    if (typeof outcome === 'number') events.push('claim+count');
    return outcome;
  };
  const answers = [...(options.answers ?? [])];
  const called: ChatTarget[] = [];
  const events: string[] = [];
  const pauses: number[] = [];
  const completed: string[] = [];
  const stopped: string[] = [];
  const { logger, lines } = memoryLogger();
  let release: () => void = () => undefined;
  const allArrived = new Promise<void>((resolve) => (release = resolve));
  const deps: UnassignDeps = {
    api: {
      unassign: async (chat) => {
        events.push('api');
        called.push(chat);
        options.duringCall?.();
        const answer = answers.shift() ?? response(201);
        if (options.holdCalls !== undefined) {
          if (called.length >= options.holdCalls) release();
          await allArrived;
        }
        return answer;
      },
    },
    results,
    batches,
    logger,
    rateLimit: async (ms) => {
      events.push(`rateLimit:${ms}`);
      pauses.push(ms);
    },
    pace: async () => void events.push('pace'),
    onBatchComplete: async (id) => {
      events.push(`complete:${id}`);
      completed.push(id);
    },
    onBatchStopped: async (id) => {
      events.push(`stopped:${id}`);
      stopped.push(id);
    },
    now: options.now ?? (() => NOW),
    outage: { maxDelayMs: 1 },
    ...(options.maxRateLimitWaitMs === undefined ? {} : { maxRateLimitWaitMs: options.maxRateLimitWaitMs }),
    ...(options.stillHolds === undefined ? {} : { stillHolds: options.stillHolds }),
    ...(options.countOnClaim === undefined ? {} : { countOnClaim: options.countOnClaim }),
    ...(options.callSlot
      ? {
          callSlot: async <T>(step: () => Promise<T>): Promise<T> => {
            if (options.callSlot === 'withdrawn') throw new CallSlotWithdrawnError();
            events.push('slot:take');
            try {
              return await step();
            } finally {
              events.push('slot:give');
            }
          },
        }
      : {}),
  };
  return { run: makeUnassignProcessor(deps), batches, results, called, events, pauses, completed, stopped, logs: lines };
}

const recorded = (r: Rig, chatKey = CHAT): ChatResult | undefined => r.results.results.get(BATCH)?.get(chatKey);

describe('unassign processor: the claim decides whether the API is called', () => {
  const CASES: readonly {
    name: string;
    claim: string;
    setup: (o?: { countOnClaim: boolean }) => Rig;
    returns: string;
    result?: Partial<ChatResult>;
  }[] = [
    { name: 'running batch', claim: 'go', setup: (o) => rig(o), returns: 'succeeded', result: { state: 'succeeded', attempts: 1 } },
    {
      name: 'chat already has a result (re-delivered job)',
      claim: 'done',
      setup: (o) => {
        const r = rig(o);
        r.results.results.set(
          BATCH,
          new Map([[CHAT, { state: 'failed', httpStatus: 422, attempts: 1, finishedAt: 1, latencyMs: 1, failureClass: 'permanent', reason: 'earlier' }]]),
        );
        return r;
      },
      returns: 'skipped',
      result: { reason: 'earlier' },
    },
    { name: 'batch record gone (expired or removed)', claim: 'gone', setup: (o) => rig({ ...o, batch: false }), returns: 'skipped' },
    { name: 'batch held for approval', claim: 'parked', setup: (o) => rig({ ...o, status: Status.awaitingApproval }), returns: 'parked' },
    { name: 'batch paused', claim: 'parked', setup: (o) => rig({ ...o, status: Status.paused }), returns: 'parked' },
    { name: 'batch stopped', claim: 'parked', setup: (o) => rig({ ...o, status: Status.stopped }), returns: 'parked' },
    {
      name: 'batch cancelling',
      claim: 'cancel',
      setup: (o) => rig({ ...o, status: Status.cancelling }),
      returns: 'cancelled',
      result: { state: 'cancelled', httpStatus: 0, attempts: 0, latencyMs: 0, finishedAt: NOW, reason: 'batch cancelled' },
    },
  ];

  it.each(CASES)('$name: claim $claim → $returns', async ({ claim, setup, returns, result }) => {
    const r = setup();
    expect(await r.run(job())).toBe(returns);
    expect(r.results.calls[0]).toEqual({ method: 'claim', args: [BATCH, CHAT] });
    // Only a `go` claim paces and calls the API.
    expect(r.called).toHaveLength(claim === 'go' ? 1 : 0);
    expect(r.events.includes('pace')).toBe(claim === 'go');
    if (result) expect(recorded(r)).toMatchObject(result);
    else expect(recorded(r)).toBeUndefined();
    // A parked chat is in the batch's parked set, so resume puts it back.
    expect(r.results.parked.get(BATCH)?.has(CHAT) ?? false).toBe(claim === 'parked');
    expect(r.pauses).toEqual([]);
  });

  it.each(CASES)('pacing off (the claim counts the call): $name → $returns, a call counted only on go', async ({ claim, setup, returns, result }) => {
    const r = setup({ countOnClaim: true });
    expect(await r.run(job())).toBe(returns);
    expect(r.results.calls[0]).toEqual({ method: 'claimCall', args: [BATCH, CHAT] });
    expect(r.results.calls.some((c) => c.method === 'countCall' || c.method === 'claim')).toBe(false);
    expect(r.called).toHaveLength(claim === 'go' ? 1 : 0);
    expect(r.events).toEqual(claim === 'go' ? ['claim+count', 'pace', 'api'] : []);
    if (result) expect(recorded(r)).toMatchObject(result);
    else expect(recorded(r)).toBeUndefined();
    expect(r.results.parked.get(BATCH)?.has(CHAT) ?? false).toBe(claim === 'parked');
    // Nothing counted is left behind: the record took the count as the chat's attempts.
    expect(r.results.apiCalls.get(BATCH)?.get(CHAT)).toBeUndefined();
  });

  it('paces, then counts the call, then calls, with the chat of the job (individual and group keys)', async () => {
    const r = rig();
    await r.run(job(CHAT));
    await r.run(job(GROUP));
    expect(r.events).toEqual(['pace', 'count', 'api', 'pace', 'count', 'api']);
    expect(r.called).toEqual([chatFromKey(CHAT), { kind: 'group', groupId: 'grp_1' }]);
  });
});

describe('unassign processor: what an answer does to the chat', () => {
  /** `attempts`: the job's `opts.attempts` (null: not set, which BullMQ reads as 1). */
  const RECORDED: readonly { name: string; answer: ApiOutcome; attemptsMade: number; attempts?: number | null; returns: string; result: ChatResult }[] = [
    {
      name: '201',
      answer: response(201, { latencyMs: 84 }),
      attemptsMade: 0,
      returns: 'succeeded',
      result: { state: 'succeeded', httpStatus: 201, attempts: 1, finishedAt: NOW, latencyMs: 84, reason: '' },
    },
    {
      name: '200 on the third attempt',
      answer: response(200),
      attemptsMade: 2,
      returns: 'succeeded',
      result: { state: 'succeeded', httpStatus: 200, attempts: 3, finishedAt: NOW, latencyMs: 12, reason: '' },
    },
    {
      name: '422 (permanent)',
      answer: response(422, { body: { statusCode: 422, message: 'User is not a member of the team' } }),
      attemptsMade: 0,
      returns: 'failed',
      result: {
        state: 'failed',
        httpStatus: 422,
        attempts: 1,
        finishedAt: NOW,
        latencyMs: 12,
        failureClass: 'permanent',
        reason: 'HTTP 422: User is not a member of the team',
      },
    },
    {
      name: '404 after a retry (permanent)',
      answer: response(404),
      attemptsMade: 1,
      returns: 'failed',
      result: { state: 'failed', httpStatus: 404, attempts: 2, finishedAt: NOW, latencyMs: 12, failureClass: 'permanent', reason: 'HTTP 404' },
    },
    {
      name: '400 (permanent)',
      answer: response(400, { body: { message: ['a', 'b'] } }),
      attemptsMade: 0,
      returns: 'failed',
      result: { state: 'failed', httpStatus: 400, attempts: 1, finishedAt: NOW, latencyMs: 12, failureClass: 'permanent', reason: 'HTTP 400: a; b' },
    },
    {
      name: '503 on the last attempt (transient)',
      answer: response(503, { body: { message: 'Service Unavailable' } }),
      attemptsMade: 2,
      returns: 'failed',
      result: {
        state: 'failed',
        httpStatus: 503,
        attempts: 3,
        finishedAt: NOW,
        latencyMs: 12,
        failureClass: 'transient',
        reason: 'HTTP 503: Service Unavailable',
      },
    },
    {
      name: 'timeout on the last attempt (transient, no HTTP status)',
      answer: network('ETIMEDOUT'),
      attemptsMade: 2,
      returns: 'failed',
      result: { state: 'failed', httpStatus: 0, attempts: 3, finishedAt: NOW, latencyMs: 30, failureClass: 'transient', reason: 'timed out (ETIMEDOUT)' },
    },
    {
      name: '500 when the job has no attempts option (one attempt)',
      answer: response(500),
      attemptsMade: 0,
      attempts: null,
      returns: 'failed',
      result: { state: 'failed', httpStatus: 500, attempts: 1, finishedAt: NOW, latencyMs: 12, failureClass: 'transient', reason: 'HTTP 500' },
    },
  ];

  it.each(RECORDED)('$name → recorded $returns', async ({ answer, attemptsMade, attempts, returns, result }) => {
    const r = rig({ answers: [answer] });
    // The earlier attempts' calls were counted when they were made.
    if (attemptsMade > 0) r.results.apiCalls.set(BATCH, new Map([[CHAT, attemptsMade]]));
    expect(await r.run(job(CHAT, attemptsMade, attempts === undefined ? 3 : attempts))).toBe(returns);
    expect(recorded(r)).toEqual(result);
    expect(r.results.calls.filter((c) => c.method === 'record')).toHaveLength(1);
    expect(r.pauses).toEqual([]);
    expect(r.stopped).toEqual([]);
  });

  const RETRIED: readonly { name: string; answer: ApiOutcome; attemptsMade: number; message: string }[] = [
    { name: '503, first of 3 attempts', answer: response(503), attemptsMade: 0, message: 'HTTP 503' },
    {
      name: '408, second of 3 attempts',
      answer: response(408, { body: { message: 'Request Timeout' } }),
      attemptsMade: 1,
      message: 'HTTP 408: Request Timeout',
    },
    { name: 'connection reset', answer: network('ECONNRESET'), attemptsMade: 0, message: 'connection reset (ECONNRESET)' },
    { name: 'unexpected 204', answer: response(204), attemptsMade: 0, message: 'unexpected HTTP 204' },
  ];

  it.each(RETRIED)('$name → throws for BullMQ to retry, records nothing', async ({ answer, attemptsMade, message }) => {
    const r = rig({ answers: [answer] });
    const thrown = await r.run(job(CHAT, attemptsMade, 3)).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toBe(message);
    expect((thrown as Error).message).not.toBe(RATE_LIMIT.message);
    expect(recorded(r)).toBeUndefined();
    expect(r.logs.filter((l) => l.msg === 'transient failure: will retry')).toEqual([
      expect.objectContaining({ level: LEVEL.info, attempt: attemptsMade + 1, reason: message }),
    ]);
    // The log masks the phone number (personal data).
    expect(JSON.stringify(r.logs)).not.toContain('919876543210');
  });
});

describe('unassign processor: 401/403 stop the batch, not the chat', () => {
  it.each([
    ['401', response(401, { body: { message: 'Invalid public api key' } }), 'HTTP 401: Invalid public api key'],
    ['403', response(403, { body: { message: 'Forbidden resource' } }), 'HTTP 403: Forbidden resource'],
  ])('%s: parks the chat, moves running → stopped with how to resume, calls onBatchStopped once', async (_code, answer, reason) => {
    const r = rig({ answers: [answer, answer] });
    expect(await r.run(job(CHAT))).toBe('parked');
    expect(recorded(r)).toBeUndefined();
    expect(r.results.parked.get(BATCH)).toEqual(new Set([CHAT]));
    const batch = r.batches.records.get(BATCH)!;
    expect(batch.status).toBe(Status.stopped);
    expect(batch.reason).toBe(`API key rejected (${reason}); fix DOUBLETICK_API_KEY, then \`bulk-unassign resume ${BATCH}\``);
    expect(r.batches.calls.filter((c) => c.method === 'apply').map((c) => c.args[1])).toEqual(['stop']);
    expect(r.stopped).toEqual([BATCH]);
    expect(r.logs.filter((l) => l.level === LEVEL.error)).toEqual([
      expect.objectContaining({ batchId: BATCH, reason, msg: 'API key rejected: batch stopped' }),
    ]);
  });

  it('two chats answered 401 at once: both parked, the batch stopped once, onBatchStopped called once', async () => {
    // Both requests are in flight together (as on two workers): both claims said go before either answer.
    const r = rig({ answers: [response(401), response(401)], holdCalls: 2 });
    expect(await Promise.all([r.run(job(CHAT)), r.run(job(GROUP))])).toEqual(['parked', 'parked']);
    expect(r.results.parked.get(BATCH)).toEqual(new Set([CHAT, GROUP]));
    expect(r.batches.calls.filter((c) => c.method === 'apply')).toHaveLength(2);
    expect(r.stopped).toEqual([BATCH]);
    // A chat fetched after the stop is parked by its claim, without a call.
    expect(await r.run(job('g:grp_2'))).toBe('parked');
    expect(r.called).toHaveLength(2);
    expect(r.stopped).toEqual([BATCH]);
  });

  it('a 401 for a batch that is no longer running (cancelled meanwhile) parks the chat but does not stop or call onBatchStopped', async () => {
    // The claim said go; the batch is cancelled while the call is in flight.
    const r: Rig = rig({ answers: [response(401)], duringCall: () => r.batches.put({ ...r.batches.records.get(BATCH)!, status: Status.cancelling }) });
    expect(await r.run(job(CHAT))).toBe('parked');
    expect(r.batches.records.get(BATCH)!.status).toBe(Status.cancelling);
    expect(r.stopped).toEqual([]);
    expect(r.results.parked.get(BATCH)?.has(CHAT)).toBe(true);
  });
});

describe('unassign processor: 429 pauses every worker and puts the job back', () => {
  /** `header`: whether the pause came from Retry-After (logged as `retryAfter`). */
  const CASES: readonly { name: string; retryAfter?: string; min: number; max: number; header: boolean }[] = [
    { name: 'Retry-After in seconds', retryAfter: '7', min: 7000, max: 7000, header: true },
    { name: 'Retry-After fractional', retryAfter: '1.5', min: 1500, max: 1500, header: true },
    { name: 'Retry-After an HTTP date 3 s ahead', retryAfter: new Date(NOW + 3000).toUTCString(), min: 3000, max: 3000, header: true },
    { name: 'no Retry-After: own backoff, 1 s ± 25 %', min: 750, max: 1250, header: false },
    { name: 'unusable Retry-After: own backoff', retryAfter: 'soon', min: 750, max: 1250, header: false },
  ];

  it.each(CASES)('$name → count429, a pause of $min to $max ms, throws RateLimitError', async ({ retryAfter, min, max, header }) => {
    const r = rig({ answers: [response(429, retryAfter === undefined ? {} : { retryAfter })] });
    const thrown = await r.run(job()).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).name).toBe(RATE_LIMIT.name);
    expect((thrown as Error).message).toBe(RATE_LIMIT.message);
    expect(r.results.rateLimited.get(BATCH)).toBe(1);
    expect(r.pauses).toHaveLength(1);
    expect(r.pauses[0]).toBeGreaterThanOrEqual(min);
    expect(r.pauses[0]).toBeLessThanOrEqual(max);
    // Not terminal: nothing recorded, no retry counted against the chat.
    expect(recorded(r)).toBeUndefined();
    expect(r.logs.filter((l) => l.level === LEVEL.warn)).toEqual([expect.objectContaining({ batchId: BATCH, pauseMs: r.pauses[0], retryAfter: header })]);
  });

  it('backs off longer on consecutive 429s without Retry-After, and starts over after a success', async () => {
    const r = rig({ answers: [response(429), response(429), response(429), response(201), response(429)] });
    for (let i = 0; i < 3; i += 1) await expect(r.run(job())).rejects.toThrow(RATE_LIMIT.message);
    expect(await r.run(job())).toBe('succeeded');
    await expect(r.run(job(GROUP))).rejects.toThrow(RATE_LIMIT.message);
    const [first, second, third, afterSuccess] = r.pauses as [number, number, number, number];
    expect([
      first >= 750 && first <= 1250,
      second >= 1500 && second <= 2500,
      third >= 3000 && third <= 5000,
      afterSuccess >= 750 && afterSuccess <= 1250,
    ]).toEqual([true, true, true, true]);
    expect(r.results.rateLimited.get(BATCH)).toBe(4);
  });
});

describe('unassign processor: the last result completes the batch', () => {
  const LAST: readonly { name: string; answer: ApiOutcome; returns: string; attemptsMade?: number }[] = [
    { name: 'success', answer: response(201), returns: 'succeeded' },
    { name: 'permanent failure', answer: response(422), returns: 'failed' },
    { name: 'transient failure on the last attempt', answer: response(503), returns: 'failed', attemptsMade: 2 },
  ];

  it.each(LAST)('$name of the last chat → onBatchComplete once, after the record', async ({ answer, returns, attemptsMade }) => {
    const r = rig({ valid: 2, answers: [response(201), answer] });
    expect(await r.run(job(GROUP))).toBe('succeeded');
    expect(r.completed).toEqual([]);
    expect(await r.run(job(CHAT, attemptsMade ?? 0, 3))).toBe(returns);
    expect(r.completed).toEqual([BATCH]);
    expect(r.events.at(-1)).toBe(`complete:${BATCH}`);
    expect(r.batches.records.get(BATCH)!.status).toBe(Status.finalizing);
  });

  it('a cancelled last chat completes the batch too', async () => {
    const r = rig({ valid: 1, status: Status.cancelling });
    expect(await r.run(job())).toBe('cancelled');
    expect(r.completed).toEqual([BATCH]);
    expect(r.called).toEqual([]);
  });

  it('a duplicate record (another worker recorded it first) is skipped and completes nothing', async () => {
    const r = rig({ valid: 1 });
    // The claim said go, then a stalled copy of the job recorded the chat while this one was calling.
    const original = r.results.record.bind(r.results);
    r.results.record = async (b, k, result) => {
      await original(b, k, { ...result, reason: 'the other copy' });
      return original(b, k, result);
    };
    expect(await r.run(job())).toBe('skipped');
    expect(recorded(r)?.reason).toBe('the other copy');
    expect(r.completed).toEqual([]);
  });
});

describe("unassign processor: an answer that is not the API's (3xx, an HTML page) stops the batch", () => {
  it.each([
    [
      '302 with a Location',
      response(302, { location: 'https://login.example.net/portal?session=abc', html: true }),
      'the API answered 302 (a redirect to https://login.example.net)',
    ],
    ['301 without a Location', response(301), 'the API answered 301 (a redirect)'],
    ['200 with an HTML page', response(200, { body: { message: '<html>' }, html: true }), 'the API answered 200 with an HTML page'],
    ['201 with an HTML page', response(201, { html: true }), 'the API answered 201 with an HTML page'],
  ])('%s: parks the chat, never counts it unassigned, stops the batch naming DOUBLETICK_BASE_URL, onBatchStopped once', async (_name, answer, start) => {
    const r = rig({ answers: [answer, answer] });
    expect(await r.run(job(CHAT))).toBe('parked');
    expect(recorded(r)).toBeUndefined();
    expect(r.results.parked.get(BATCH)).toEqual(new Set([CHAT]));
    const batch = r.batches.records.get(BATCH)!;
    expect(batch).toMatchObject({ status: Status.stopped, counts: { succeeded: 0, failed: 0 } });
    expect(batch.reason.startsWith(start)).toBe(true);
    expect(batch.reason).toContain('check DOUBLETICK_BASE_URL');
    expect(batch.reason).toContain(`\`bulk-unassign resume ${BATCH}\``);
    // Only the origin of the redirect is told: its query may hold a portal's session.
    expect(batch.reason).not.toContain('session=abc');
    expect(r.stopped).toEqual([BATCH]);
    // The next chat is parked by its claim, without a call.
    expect(await r.run(job(GROUP))).toBe('parked');
    expect(r.called).toHaveLength(1);
    expect(r.logs.filter((l) => l.level === LEVEL.error)).toEqual([expect.objectContaining({ batchId: BATCH, msg: 'not the API answering: batch stopped' })]);
  });
});

describe("unassign processor: attempts are the calls counted in Redis, not BullMQ's attemptsMade", () => {
  it('a job re-run after its worker died mid-call (BullMQ counted nothing): the lost call is in the attempts', async () => {
    const r = rig();
    r.results.apiCalls.set(BATCH, new Map([[CHAT, 1]])); // the dead worker counted its call, then died
    expect(await r.run(job(CHAT, 0))).toBe('succeeded');
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(r.batches.records.get(BATCH)!.attempts).toBe(2);
    // The record step takes the count with it.
    expect(r.results.apiCalls.get(BATCH)?.has(CHAT)).toBe(false);
  });

  it('a retried 503 keeps its count; a 429 is taken back (not an attempt)', async () => {
    const r = rig({ answers: [response(503), response(429, { retryAfter: '1' }), response(201)] });
    await expect(r.run(job(CHAT, 0))).rejects.toThrow('HTTP 503');
    expect(r.results.apiCalls.get(BATCH)?.get(CHAT)).toBe(1);
    await expect(r.run(job(CHAT, 1))).rejects.toThrow(RATE_LIMIT.message);
    expect(r.results.apiCalls.get(BATCH)?.get(CHAT)).toBe(1);
    expect(await r.run(job(CHAT, 1))).toBe('succeeded');
    expect(recorded(r)).toMatchObject({ attempts: 2 });
    expect(r.called).toHaveLength(3);
  });

  it('a 503 after another copy recorded the chat: no retry, and the call joins the batch attempts (none lost)', async () => {
    const r = rig({
      valid: 2,
      answers: [response(503)],
      // While this call is out, a copy whose lock lapsed records the chat with its own call (1), and this copy's
      // count (1) comes after that record: it is what must not be lost.
      duringCall: () => {
        const calls = r.results.apiCalls.get(BATCH)!;
        calls.set(CHAT, 1);
        void r.results.record(BATCH, CHAT, { state: 'succeeded', httpStatus: 201, attempts: 1, finishedAt: NOW, latencyMs: 5, reason: '' });
        calls.set(CHAT, 1);
      },
    });
    expect(await r.run(job(CHAT, 0))).toBe('skipped');
    expect(r.called).toHaveLength(1);
    expect(r.batches.records.get(BATCH)!.attempts).toBe(2);
    expect(r.results.apiCalls.get(BATCH)?.has(CHAT)).toBe(false);
  });

  it('a cancelled chat makes no call and counts none', async () => {
    const r = rig({ status: Status.cancelling });
    expect(await r.run(job())).toBe('cancelled');
    expect(r.events.includes('count')).toBe(false);
    expect(recorded(r)).toMatchObject({ attempts: 0 });
  });
});

describe('unassign processor: Redis outages are waited out, never an attempt', () => {
  /** Makes `method` of the result store throw an outage `times` times, then work. */
  function failing<K extends 'claim' | 'claimCall' | 'record' | 'countCall'>(r: Rig, method: K, times: number): { tries: () => number } {
    const store = r.results as unknown as Record<K, (...args: unknown[]) => Promise<unknown>>;
    const real = store[method].bind(r.results);
    let tries = 0;
    store[method] = async (...args: unknown[]) => {
      tries += 1;
      if (tries <= times) throw OOM();
      return real(...args);
    };
    return { tries: () => tries };
  }

  it('an outage at the claim is waited out without throwing, then the job goes on (the lock still held)', async () => {
    const asked: string[] = [];
    const r = rig({ stillHolds: async () => (asked.push('asked'), true) });
    const claim = failing(r, 'claim', 2);
    expect(await r.run(job(), 'token-1')).toBe('succeeded');
    expect(claim.tries()).toBe(3);
    expect(r.called).toHaveLength(1);
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 1 });
    // After a wait the lock is checked, once.
    expect(asked).toEqual(['asked']);
    expect(r.logs.filter((l) => l.msg === 'Redis serves again: going on')).toEqual([expect.objectContaining({ step: 'claim chat' })]);
  });

  it('without an outage the lock is not asked about', async () => {
    const asked: string[] = [];
    const r = rig({ stillHolds: async () => (asked.push('asked'), true) });
    expect(await r.run(job(), 'token-1')).toBe('succeeded');
    expect(asked).toEqual([]);
  });

  it('after a wait, a lost lock returns handed-over without calling the API or counting a call', async () => {
    const r = rig({ stillHolds: async () => false });
    failing(r, 'claim', 1);
    expect(await r.run(job(), 'token-1')).toBe('handed-over');
    expect(r.called).toEqual([]);
    expect(r.events.includes('count')).toBe(false);
    expect(recorded(r)).toBeUndefined();
    expect(r.logs.filter((l) => l.msg.startsWith('lock lost'))).toEqual([
      expect.objectContaining({ level: LEVEL.warn, batchId: BATCH, msg: 'lock lost during a Redis outage: the job is left to the worker that holds it now' }),
    ]);
  });

  it('an outage while counting the call: a lost lock takes the count back and hands over; a held one takes a new slot first', async () => {
    const lost = rig({ stillHolds: async () => false });
    failing(lost, 'countCall', 1);
    expect(await lost.run(job(), 'token-1')).toBe('handed-over');
    expect(lost.called).toEqual([]);
    expect(lost.results.apiCalls.get(BATCH)?.get(CHAT)).toBe(0);

    const held = rig({ stillHolds: async () => true });
    const count = failing(held, 'countCall', 1);
    expect(await held.run(job(), 'token-1')).toBe('succeeded');
    expect(count.tries()).toBe(2);
    // The slot taken before the outage is stale: a new one before the call.
    expect(held.events).toEqual(['pace', 'count', 'pace', 'api']);
    expect(recorded(held)).toMatchObject({ attempts: 1 });
  });

  it('pacing off, an outage at the claim that counts the call: a lost lock takes the count back and hands over; a held one calls once', async () => {
    const lost = rig({ countOnClaim: true, stillHolds: async () => false });
    failing(lost, 'claimCall', 1);
    expect(await lost.run(job(), 'token-1')).toBe('handed-over');
    expect(lost.called).toEqual([]);
    expect(lost.results.apiCalls.get(BATCH)?.get(CHAT)).toBe(0);

    const held = rig({ countOnClaim: true, stillHolds: async () => true });
    const claim = failing(held, 'claimCall', 2);
    expect(await held.run(job(), 'token-1')).toBe('succeeded');
    expect(claim.tries()).toBe(3);
    expect(held.events).toEqual(['claim+count', 'pace', 'api']);
    expect(recorded(held)).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect(held.batches.records.get(BATCH)).toMatchObject({ attempts: 1 });
  });

  it('pacing off: a 429 takes its counted call back, a transient failure keeps it, so attempts are the calls that counted', async () => {
    const r = rig({ countOnClaim: true, answers: [response(503), response(429, { retryAfter: '1' }), response(201)] });
    await expect(r.run(job(CHAT, 0))).rejects.toThrow('HTTP 503');
    await expect(r.run(job(CHAT, 1))).rejects.toThrow(RATE_LIMIT.message);
    expect(await r.run(job(CHAT, 1))).toBe('succeeded');
    expect(r.called).toHaveLength(3);
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(r.batches.records.get(BATCH)).toMatchObject({ attempts: 2, done: 1 });
    expect(r.events.filter((e) => e === 'count')).toEqual([]);
  });

  it('an outage at the record holds the result and writes it once Redis serves', async () => {
    const r = rig({ valid: 1 });
    const record = failing(r, 'record', 3);
    expect(await r.run(job())).toBe('succeeded');
    expect(record.tries()).toBe(4);
    expect(r.called).toHaveLength(1);
    expect(recorded(r)).toEqual({ state: 'succeeded', httpStatus: 201, attempts: 1, finishedAt: NOW, latencyMs: 12, reason: '' });
    expect(r.batches.records.get(BATCH)).toMatchObject({ done: 1, attempts: 1, status: Status.finalizing });
    expect(r.completed).toEqual([BATCH]);
    expect(r.logs.filter((l) => l.level === LEVEL.error)).toEqual([expect.objectContaining({ step: 'record result' })]);
  });

  it('an error that is not an outage is thrown at once', async () => {
    const r = rig();
    r.results.claim = async () => {
      throw new Error('ERR wrong number of arguments');
    };
    await expect(r.run(job())).rejects.toThrow('ERR wrong number of arguments');
    expect(r.called).toEqual([]);
  });
});

describe('unassign processor: 429s for longer than maxRateLimitWaitMs stop the batch', () => {
  const LIMIT = 60_000;
  const limited = (retryAfter = '1') => response(429, { retryAfter });

  it('stops at the first 429 once the run has lasted the limit: chat parked, none failed, the run ended, onBatchStopped once', async () => {
    let t = NOW;
    const r = rig({ answers: [limited(), limited('600'), limited(), limited()], now: () => t, maxRateLimitWaitMs: LIMIT });
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    expect(r.batches.records.get(BATCH)).toMatchObject({ rateLimitedSince: NOW, apiPauseUntil: NOW + 1000 });
    t = NOW + 30_000;
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    // Retry-After 600 s, cut to where the run reaches its limit, so the next call decides.
    expect(r.pauses).toEqual([1000, 30_000]);
    expect(r.batches.records.get(BATCH)!.apiPauseUntil).toBe(NOW + LIMIT);
    t = NOW + LIMIT;
    expect(await r.run(job(CHAT))).toBe('parked');
    const batch = r.batches.records.get(BATCH)!;
    expect(batch.status).toBe(Status.stopped);
    expect(batch.reason).toBe(
      `the API answered 429 for 1 minutes (MAX_RATE_LIMIT_WAIT_MINUTES): resume when the limit is lifted, \`bulk-unassign resume ${BATCH}\``,
    );
    expect(batch.rateLimitedSince).toBeUndefined();
    expect(batch.counts.failed).toBe(0);
    expect(recorded(r)).toBeUndefined();
    expect(r.results.parked.get(BATCH)).toEqual(new Set([CHAT]));
    expect(r.stopped).toEqual([BATCH]);
    expect(r.pauses).toHaveLength(2);
    // A 429 is never an attempt: nothing is left counted for the chat.
    expect(r.results.apiCalls.get(BATCH)?.has(CHAT) ?? false).toBe(false);
    // A chat taken after the stop is parked by its claim.
    expect(await r.run(job(GROUP))).toBe('parked');
    expect(r.called).toHaveLength(3);
  });

  it('a success ends the run: the limit counts from the next 429', async () => {
    let t = NOW;
    const r = rig({ answers: [limited(), response(201), limited(), limited()], now: () => t, maxRateLimitWaitMs: LIMIT });
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    t = NOW + 50_000;
    expect(await r.run(job(CHAT))).toBe('succeeded');
    expect(r.batches.records.get(BATCH)!.rateLimitedSince).toBeUndefined();
    t = NOW + 70_000;
    await expect(r.run(job(GROUP))).rejects.toThrow(RATE_LIMIT.message);
    expect(r.batches.records.get(BATCH)!.rateLimitedSince).toBe(NOW + 70_000);
    t = NOW + 71_000;
    await expect(r.run(job(GROUP))).rejects.toThrow(RATE_LIMIT.message);
    expect(r.batches.records.get(BATCH)!.status).toBe(Status.running);
  });

  it('a 429 long after the last pause ended (batch paused, no worker) starts a new run', async () => {
    let t = NOW;
    const r = rig({ answers: [limited(), limited()], now: () => t, maxRateLimitWaitMs: LIMIT });
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    t = NOW + 1000 + RATE_LIMIT_RUN_GAP_MS + 1;
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    expect(r.batches.records.get(BATCH)).toMatchObject({ status: Status.running, rateLimitedSince: t });
  });

  it('with no limit (0, the processor default) a run of 429s never stops the batch', async () => {
    let t = NOW;
    const r = rig({ answers: [limited('600'), limited('600')], now: () => t });
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    t = NOW + 24 * 3_600_000;
    await expect(r.run(job(CHAT))).rejects.toThrow(RATE_LIMIT.message);
    expect(r.batches.records.get(BATCH)!.status).toBe(Status.running);
    expect(r.pauses).toEqual([600_000, 600_000]);
  });
});

describe('unassign processor: a call slot is held from the claim to the answer, not through the record', () => {
  it('success: claim, call and answer inside the slot; the record and the batch completion after it is given back', async () => {
    const r = rig({ callSlot: true, valid: 1 });
    const record = r.results.record.bind(r.results);
    r.results.record = async (...args) => {
      r.events.push('record');
      return record(...args);
    };
    await expect(r.run(job())).resolves.toBe('succeeded');
    expect(r.events).toEqual(['slot:take', 'pace', 'count', 'api', 'slot:give', 'record', `complete:${BATCH}`]);
  });

  it('429: the slot is given back before every worker is paused', async () => {
    const r = rig({ callSlot: true, answers: [response(429, { retryAfter: '2' })] });
    await expect(r.run(job())).rejects.toThrow(RATE_LIMIT.message);
    expect(r.events.slice(0, 5)).toEqual(['slot:take', 'pace', 'count', 'api', 'slot:give']);
    expect(r.events.slice(5)).toEqual(['rateLimit:2000']);
  });

  it('a chat the claim turns away gives its slot back without a call', async () => {
    const r = rig({ callSlot: true, status: Status.paused });
    await expect(r.run(job())).resolves.toBe('parked');
    expect(r.events).toEqual(['slot:take', 'slot:give']);
    expect(r.called).toEqual([]);
  });

  it('a job whose slot was withdrawn (the worker is stopping) goes back to the queue: no claim, no count, no call, no record', async () => {
    const r = rig({ callSlot: 'withdrawn', countOnClaim: true });
    await expect(r.run(job())).rejects.toThrow(RATE_LIMIT.message);
    expect(r.events).toEqual([]);
    expect(r.called).toEqual([]);
    expect(recorded(r)).toBeUndefined();
    expect(await r.results.countCall(BATCH, CHAT, 1)).toBe(1);
  });
});
