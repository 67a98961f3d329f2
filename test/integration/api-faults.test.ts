/**
 * API faults from the stand-in server. Transient ones (503, 500, timeouts,
 * connection resets) recover within MAX_ATTEMPTS or end as failures after exactly MAX_ATTEMPTS calls; permanent
 * ones (400, 404, 422) are reported with their reason after exactly one call. Every figure is checked against
 * what the server itself saw. (429s: see rate-limit.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { ingest, type RowSource } from '../../src/ingest/enqueue.js';
import { type ChatTarget, chatKeyOf } from '../../src/domain/chat.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

const individual = (phone: string): ChatTarget => ({ kind: 'individual', customerPhoneNumber: phone, wabaNumber: WABA });

/**
 * A row source of chats as given. Not a CSV: the CSV reader (rightly) refuses numbers the API would answer 400
 * to, and a rerun or nightly source may still hand such a chat over — this is how a real 400 is provoked.
 */
function chatSource(chats: readonly ChatTarget[]): RowSource {
  const header = ['customerPhoneNumber', 'wabaNumber', 'groupId'];
  return {
    header,
    sha256: () => '',
    async *rows() {
      for (const [i, chat] of chats.entries()) {
        const cells =
          chat.kind === 'individual'
            ? { customerPhoneNumber: chat.customerPhoneNumber, wabaNumber: chat.wabaNumber, groupId: '' }
            : { customerPhoneNumber: '', wabaNumber: '', groupId: chat.groupId };
        yield { kind: 'valid' as const, row: { line: i + 2, chat, key: chatKeyOf(chat), cells } };
      }
    },
  };
}

async function run(e: TestEnv, chats: readonly ChatTarget[], workers: number) {
  const batch = await ingest(e.ctx, chatSource(chats), { batch: { kind: 'rerun', source: 'test' }, duplicateWindowHours: 0 });
  for (let i = 0; i < workers; i += 1) e.worker();
  return e.waitFor(batch.id, ['finished'], 45_000);
}

describe('API faults: transient ones recover within MAX_ATTEMPTS, permanent ones fail once with their reason', () => {
  it('503s, timeouts and resets recover or exhaust MAX_ATTEMPTS; 400/404/422 are called once and reported', async () => {
    const p = phones(200);
    const recovers503 = [...p.slice(0, 10).map((n) => [n, 1] as const), ...p.slice(10, 20).map((n) => [n, 2] as const)];
    const exhausts503 = p.slice(20, 25); // 503 three times = MAX_ATTEMPTS
    const timeouts = { ...Object.fromEntries(p.slice(30, 33).map((n) => [n, 1])), [p[33] as string]: 3 };
    const resets = { ...Object.fromEntries(p.slice(40, 43).map((n) => [n, 2])), [p[43] as string]: 3 };
    const rejected = p.slice(50, 60); // 422
    const notFound = [...p.slice(60, 65), 'grp_gone']; // 404, a group among them
    const badRequest = ['12345', '1234']; // 400: too short for the API's schema
    env = await makeTestEnv({
      api: {
        faults: {
          flaky: { ...Object.fromEntries(recovers503), ...Object.fromEntries(exhausts503.map((n) => [n, 3])) },
          timeoutNumbers: timeouts,
          resetNumbers: resets,
          rejectNumbers: rejected,
          notFoundNumbers: notFound,
        },
      },
      // A timeout is ambiguous (the server may have done the work), so the test's timeout must only ever hit the
      // held calls: 1 s leaves room for a busy machine to answer the others late.
      config: { maxAttempts: 3, requestTimeoutMs: 1000 },
    });
    const chats = [
      ...p.map(individual),
      ...badRequest.map(individual),
      { kind: 'group', groupId: 'grp_ok' } as const,
      { kind: 'group', groupId: 'grp_gone' } as const,
    ];
    const done = await run(env, chats, 2);

    const permanent = rejected.length + notFound.length + badRequest.length; // 10 + 6 + 2
    const exhausted = exhausts503.length + 1 + 1; // 503 ×3, timeout ×3, reset ×3
    const stats = env.api.stats();
    expect(done.counts).toMatchObject({ valid: 204, succeeded: 204 - permanent - exhausted, failed: permanent + exhausted, cancelled: 0 });
    // The server: each success exactly once, each permanent answer exactly once per chat, each transient fault exactly as armed.
    expect(Object.keys(stats.unassigned)).toHaveLength(done.counts.succeeded);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(stats.byStatus).toEqual({
      201: done.counts.succeeded,
      400: badRequest.length,
      404: notFound.length,
      422: rejected.length,
      503: 10 * 1 + 10 * 2 + exhausts503.length * 3,
      timeout: 3 * 1 + 3,
      reset: 3 * 2 + 3,
    });
    // Every call the server saw is an attempt on the report, and nothing else is.
    expect(done.attempts).toBe(stats.requests);

    const result = (chat: ChatTarget) => env!.ctx.results.get(done.id, chatKeyOf(chat));
    expect(await result(individual(p[15] as string))).toMatchObject({ state: 'succeeded', httpStatus: 201, attempts: 3 });
    expect(await result(individual(p[31] as string))).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(await result(individual(p[41] as string))).toMatchObject({ state: 'succeeded', attempts: 3 });
    expect(await result(individual(p[20] as string))).toMatchObject({
      state: 'failed',
      failureClass: 'transient',
      httpStatus: 503,
      attempts: 3,
      reason: 'HTTP 503: Service Unavailable',
    });
    expect(await result(individual(p[33] as string))).toMatchObject({
      state: 'failed',
      failureClass: 'transient',
      httpStatus: 0,
      attempts: 3,
      reason: 'timed out (ETIMEDOUT)',
    });
    expect(await result(individual(p[43] as string))).toMatchObject({
      state: 'failed',
      failureClass: 'transient',
      httpStatus: 0,
      attempts: 3,
      reason: 'connection reset (ECONNRESET)',
    });
    expect(await result(individual(p[50] as string))).toMatchObject({
      state: 'failed',
      failureClass: 'permanent',
      httpStatus: 422,
      attempts: 1,
      reason: 'HTTP 422: User is not a member of the team',
    });
    expect(await result({ kind: 'group', groupId: 'grp_gone' })).toMatchObject({
      state: 'failed',
      failureClass: 'permanent',
      httpStatus: 404,
      attempts: 1,
      reason: 'HTTP 404: Chat not found',
    });
    expect(await result(individual('12345'))).toMatchObject({
      state: 'failed',
      failureClass: 'permanent',
      httpStatus: 400,
      attempts: 1,
      reason: 'HTTP 400: customerPhoneNumber must be 7 to 15 digits',
    });

    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, done.id, 'summary.json'), 'utf8'));
    expect(summary.failuresByClass).toEqual({ permanent, transient: exhausted });
    expect(summary.failureReasons).toEqual([
      { reason: 'HTTP 422: User is not a member of the team', count: 10 },
      { reason: 'HTTP 404: Chat not found', count: 6 },
      { reason: 'HTTP 503: Service Unavailable', count: 5 },
      { reason: 'HTTP 400: customerPhoneNumber must be 7 to 15 digits', count: 2 },
      { reason: 'connection reset (ECONNRESET)', count: 1 },
      { reason: 'timed out (ETIMEDOUT)', count: 1 },
    ]);
    expect(summary.attempts).toEqual({ total: stats.requests, retries: stats.requests - 204 });
    const failedCsv = readFileSync(join(env.config.reportsDir, done.id, 'failed.csv'), 'utf8')
      .trim()
      .split('\r\n');
    expect(failedCsv).toHaveLength(1 + permanent + exhausted);
    expect(failedCsv).toContain(`${p[50]},${WABA},,422,HTTP 422: User is not a member of the team`);
    expect(failedCsv).toContain(',,grp_gone,404,HTTP 404: Chat not found');
    expect(failedCsv).toContain(`${p[33]},${WABA},,no response,timed out (ETIMEDOUT)`);
  });

  it('random 500s (serverErrorRate): every chat ends succeeded once or failed after exactly MAX_ATTEMPTS, matching the server', async () => {
    env = await makeTestEnv({ api: { faults: { serverErrorRate: 0.3, seed: 7 } }, config: { maxAttempts: 3 } });
    const p = phones(300, 1000);
    const done = await run(env, p.map(individual), 3);

    const stats = env.api.stats();
    expect(done.counts.succeeded + done.counts.failed).toBe(300);
    expect(Object.keys(stats.unassigned)).toHaveLength(done.counts.succeeded);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(stats.byStatus['201']).toBe(done.counts.succeeded);
    expect(stats.byStatus['500']).toBe(stats.requests - done.counts.succeeded);
    expect(done.attempts).toBe(stats.requests);
    // ~30 % of calls fail, so retries happened; a chat only fails after 3 × 500 in a row.
    expect(stats.byStatus['500']).toBeGreaterThan(30);
    for await (const [, r] of env.ctx.results.scan(done.id)) {
      if (r.state === 'failed') expect(r).toMatchObject({ httpStatus: 500, attempts: 3, failureClass: 'transient', reason: 'HTTP 500: Internal server error' });
      else expect(r).toMatchObject({ state: 'succeeded', httpStatus: 201 });
    }
    expect(done.reasons).toEqual(done.counts.failed > 0 ? { 'HTTP 500: Internal server error': done.counts.failed } : {});
  });
});
