/**
 * jobs/unassign.ts for the two kinds of batch that keep agents, every dependency injected (in-memory stores from
 * test/unit/fakes/stores.ts, API stubs answering ApiOutcome values, a plain object shaped like a BullMQ Job):
 *  - a batch with --capture-assignees reads the agent (GET /customer/details) under its own call slot before the
 *    unassign, keeps it, and does not call a chat found without one;
 *  - a restore batch calls assign with the kept agent and `reassign: false`; a 409 is a skip.
 */
import { describe, expect, it } from '@jest/globals';
import { type Job, Worker } from 'bullmq';

import { ALREADY_UNASSIGNED, GROUP_NOT_CAPTURED, makeUnassignProcessor } from '../../jobs/unassign.js';
import { type ApiOutcome, ASSIGNED_SINCE_REASON } from '../../src/execution/classify.js';
import { Status } from '../../src/domain/lifecycle.js';
import type { BatchAction } from '../../src/store/codecs.js';
import type { UnassignJobData } from '../../src/store/queue.js';
import type { ChatResult } from '../../src/store/result-store.js';
import { batchRecord, fakeBatchStore, type FakeResultStore, fakeResultStore } from './fakes/stores.js';
import { memoryLogger } from './fakes/logger.js';

const BATCH = 'b1';
const CHAT = 'p:919876543210@919000000000';
const GROUP = 'g:grp_1';
const AGENT = '919811111111';

const response = (statusCode: number, body?: unknown, retryAfter?: string): ApiOutcome => ({
  kind: 'response',
  statusCode,
  body,
  latencyMs: 7,
  ...(retryAfter === undefined ? {} : { retryAfter }),
});
const details = (agent: string | null): ApiOutcome => response(200, { customer: { phone: '+919876543210', assignedUserNumber: agent } });

function job(chatKey = CHAT, attemptsMade = 0): Job<UnassignJobData> {
  return { data: { b: BATCH, k: chatKey }, attemptsMade, opts: { attempts: 3 } } as unknown as Job<UnassignJobData>;
}

interface Rig {
  readonly run: (j: Job<UnassignJobData>) => Promise<string>;
  readonly results: FakeResultStore;
  /** API calls in order: `details`, `unassign`, `assign:<agent>:<reassign>`; and `pace`, `count`. */
  readonly events: string[];
}

function rig(mode: { action?: BatchAction; capture?: boolean }, answers: { details?: ApiOutcome[]; unassign?: ApiOutcome[]; assign?: ApiOutcome[] } = {}): Rig {
  const batches = fakeBatchStore([
    batchRecord({ id: BATCH, status: Status.running, action: mode.action ?? 'unassign', captureAssignees: mode.capture ?? false, counts: { valid: 10 } }),
  ]);
  const results = fakeResultStore(batches);
  const events: string[] = [];
  const countCall = results.countCall.bind(results);
  results.countCall = async (...args) => {
    events.push(args[2] === -1 ? 'uncount' : 'count');
    return countCall(...args);
  };
  const queue = { details: [...(answers.details ?? [])], unassign: [...(answers.unassign ?? [])], assign: [...(answers.assign ?? [])] };
  const run = makeUnassignProcessor({
    api: {
      unassign: async () => (events.push('unassign'), queue.unassign.shift() ?? response(201)),
      assign: async (_chat, agent, { reassign }) => (events.push(`assign:${agent}:${reassign}`), queue.assign.shift() ?? response(201)),
      customerDetails: async () => (events.push('details'), queue.details.shift() ?? details(AGENT)),
    },
    results,
    batches,
    logger: memoryLogger().logger,
    rateLimit: async () => undefined,
    pace: async () => void events.push('pace'),
    onBatchComplete: async () => undefined,
    onBatchStopped: async () => undefined,
    now: () => 1_764_030_000_000,
    outage: { maxDelayMs: 1 },
  });
  return { run, results, events };
}

const recorded = (r: Rig, chatKey = CHAT): ChatResult | undefined => r.results.results.get(BATCH)?.get(chatKey);

describe('--capture-assignees: the agent is read right before the unassign call', () => {
  it('reads, keeps the agent, then unassigns under a call slot of its own: two calls, two attempts', async () => {
    const r = rig({ capture: true });
    expect(await r.run(job())).toBe('succeeded');
    expect(r.events).toEqual(['pace', 'count', 'details', 'pace', 'count', 'unassign']);
    expect(await r.results.agentOf(BATCH, CHAT)).toBe(AGENT);
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 2 });
  });

  it('a chat found without an agent is skipped and not called', async () => {
    const r = rig({ capture: true }, { details: [details(null)] });
    expect(await r.run(job())).toBe('skipped');
    expect(r.events).toEqual(['pace', 'count', 'details']);
    expect(recorded(r)).toMatchObject({ state: 'skipped', reason: ALREADY_UNASSIGNED, attempts: 1, httpStatus: 200 });
    expect(await r.results.agentOf(BATCH, CHAT)).toBeUndefined();
  });

  it('found without an agent after this batch kept one (an earlier attempt’s unassign whose answer was lost): succeeded, restorable', async () => {
    const r = rig({ capture: true }, { details: [details(AGENT), details(null)], unassign: [response(503)] });
    await expect(r.run(job())).rejects.toThrow('HTTP 503');
    expect(await r.run(job(CHAT, 1))).toBe('succeeded');
    expect(r.events.filter((e) => e === 'unassign')).toHaveLength(1);
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 3, reason: expect.stringContaining('earlier attempt') as unknown });
    expect(await r.results.agentOf(BATCH, CHAT)).toBe(AGENT);
  });

  it('a 404 from customer details fails the chat (permanent) without unassigning it', async () => {
    const r = rig({ capture: true }, { details: [response(404, { statusCode: 404, message: 'NotFound' })] });
    expect(await r.run(job())).toBe('failed');
    expect(r.events).not.toContain('unassign');
    expect(recorded(r)).toMatchObject({ state: 'failed', failureClass: 'permanent', httpStatus: 404 });
    expect(recorded(r)?.reason).toMatch(/^agent not read, chat not unassigned \(GET \/customer\/details HTTP 404: NotFound\)/);
  });

  it('an answer without customer.assignedUserNumber is not read as "no agent": the chat fails, not unassigned', async () => {
    const r = rig({ capture: true }, { details: [response(200, { customer: {} })] });
    expect(await r.run(job())).toBe('failed');
    expect(r.events).not.toContain('unassign');
    expect(recorded(r)?.reason).toContain('without customer.assignedUserNumber');
  });

  it('a 429 to the read pauses like any call: the call is taken back, nothing unassigned', async () => {
    const r = rig({ capture: true }, { details: [response(429, {}, '2')] });
    await expect(r.run(job())).rejects.toThrow(Worker.RateLimitError().message);
    expect(r.events).toEqual(['pace', 'count', 'details']);
    expect(r.results.apiCalls.get(BATCH)?.get(CHAT)).toBeUndefined();
    expect(recorded(r)).toBeUndefined();
  });

  it('a group chat cannot be read: skipped (not unassigned) unless its source gave the agent', async () => {
    const r = rig({ capture: true });
    expect(await r.run(job(GROUP))).toBe('skipped');
    expect(recorded(r, GROUP)).toMatchObject({ state: 'skipped', reason: GROUP_NOT_CAPTURED, attempts: 0 });
    expect(r.events).toEqual(['pace', 'count', 'uncount']);
    const known = rig({ capture: true });
    await known.results.keepAgent(BATCH, GROUP, AGENT);
    expect(await known.run(job(GROUP))).toBe('succeeded');
    expect(known.events).toEqual(['pace', 'count', 'unassign']);
  });
});

describe('restore batches: assign back, never take a chat from its agent', () => {
  it('assigns the kept agent with reassign false', async () => {
    const r = rig({ action: 'assign' });
    await r.results.keepAgent(BATCH, CHAT, AGENT);
    expect(await r.run(job())).toBe('succeeded');
    expect(r.events).toEqual(['pace', 'count', `assign:${AGENT}:false`]);
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 1, httpStatus: 201 });
  });

  it('a 409 (the chat has an agent again) is skipped with the reason, not retried', async () => {
    const r = rig({ action: 'assign' }, { assign: [response(409, { statusCode: 409, message: 'Chat is already assigned' })] });
    await r.results.keepAgent(BATCH, CHAT, AGENT);
    expect(await r.run(job())).toBe('skipped');
    expect(recorded(r)).toMatchObject({ state: 'skipped', httpStatus: 409, attempts: 1, reason: expect.stringContaining(ASSIGNED_SINCE_REASON) as unknown });
  });

  it('a 503 is retried as for an unassign, then assigns', async () => {
    const r = rig({ action: 'assign' }, { assign: [response(503)] });
    await r.results.keepAgent(BATCH, CHAT, AGENT);
    await expect(r.run(job())).rejects.toThrow('HTTP 503');
    expect(await r.run(job(CHAT, 1))).toBe('succeeded');
    expect(recorded(r)).toMatchObject({ state: 'succeeded', attempts: 2 });
  });

  it('a chat without a kept agent fails without a call (the call count is taken back)', async () => {
    const r = rig({ action: 'assign' });
    expect(await r.run(job())).toBe('failed');
    expect(r.events).toEqual(['pace', 'count', 'uncount']);
    expect(recorded(r)).toMatchObject({ state: 'failed', failureClass: 'permanent', attempts: 0 });
  });

  it('an unassigning batch never calls assign or customer details', async () => {
    const r = rig({});
    await r.results.keepAgent(BATCH, CHAT, AGENT);
    expect(await r.run(job())).toBe('succeeded');
    expect(r.events).toEqual(['pace', 'count', 'unassign']);
  });
});
