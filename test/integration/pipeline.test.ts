/**
 * End to end: a messy CSV of 1,200 rows → batch → in-process workers → report, against the stand-in
 * server with permanent (422/404) and transient (503, timeout, reset) faults. Report counts must equal what the
 * server itself saw, no chat may be unassigned twice, and every row must be accounted for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

function messyCsv(numbers: string[]): { text: string; rejected: number; duplicates: number } {
  const lines = ['\ufeffCustomer Phone;WABA;Notes'];
  numbers.forEach((n, i) => {
    // Vary the format the way real exports do: +, 00, spaces, dashes, parentheses.
    const shown = [
      `+${n}`,
      `00${n}`,
      `+${n.slice(0, 2)} ${n.slice(2, 7)} ${n.slice(7)}`,
      `${n.slice(0, 2)}-${n.slice(2)}`,
      `(+${n.slice(0, 2)}) ${n.slice(2)}`,
    ][i % 5];
    lines.push(`${shown};${WABA};${i % 97 === 0 ? '"multi\r\nline; note"' : `note ${i}`}`);
    if (i % 250 === 0) lines.push('');
  });
  lines.push(`not-a-number;${WABA};bad`, `12345;${WABA};short`, `;${WABA};empty`);
  lines.push(`+${numbers[0]};${WABA};dup`, `00${numbers[1]};${WABA};dup`);
  return { text: `${lines.join('\r\n')}\r\n`, rejected: 3, duplicates: 2 };
}

describe('pipeline: CSV in, every chat through rate-limited workers, exact report out', () => {
  it('runs 1,200 chats with permanent and transient faults; report counts equal the server log', async () => {
    const numbers = phones(1200);
    const reject = numbers.filter((_, i) => i % 100 === 7); // 12 × 422
    const notFound = [numbers[3] as string, numbers[503] as string]; // 2 × 404
    const flaky = Object.fromEntries(numbers.filter((_, i) => i % 50 === 11).map((n) => [n, 2])); // recover on attempt 3
    const tooFlaky = numbers[999] as string; // 503 more often than MAX_ATTEMPTS → transient failure
    env = await makeTestEnv({
      api: {
        faults: {
          rejectNumbers: reject,
          notFoundNumbers: notFound,
          flaky: { ...flaky, [tooFlaky]: 10 },
          timeoutNumbers: { [numbers[42] as string]: 1 },
          resetNumbers: { [numbers[77] as string]: 1 },
        },
      },
      config: { maxAttempts: 3, requestTimeoutMs: 500 },
    });
    const { text, rejected, duplicates } = messyCsv(numbers);
    const batch = await env.ingestCsv(env.csv('messy.csv', text));
    expect(batch.counts).toMatchObject({ rows: 1200 + rejected + duplicates, valid: 1200, rejected, duplicates });
    env.worker();
    env.worker(); // two workers in one process, sharing the queue
    const done = await env.waitFor(batch.id, ['finished']);

    const stats = env.api.stats();
    const permanent = reject.length + notFound.length;
    expect(done.counts).toMatchObject({ rows: 1205, valid: 1200, rejected: 3, duplicates: 2, succeeded: 1200 - permanent - 1, failed: permanent + 1 });
    expect(Object.keys(stats.unassigned).length).toBe(done.counts.succeeded);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(stats.byStatus['422']).toBe(reject.length);
    expect(stats.byStatus['404']).toBe(notFound.length);
    expect(stats.byStatus['503']).toBe(Object.keys(flaky).length * 2 + 3);

    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, batch.id, 'summary.json'), 'utf8'));
    expect(summary.status).toBe('finished');
    expect(summary.counts.rows).toBe(summary.counts.valid + summary.counts.rejected + summary.counts.duplicates);
    expect(summary.counts.valid).toBe(summary.counts.succeeded + summary.counts.failed);
    expect(summary.counts.succeeded).toBe(Object.keys(stats.unassigned).length);
    expect(summary.latencyMs.p50).toBeGreaterThanOrEqual(0);
    const failedCsv = readFileSync(join(env.config.reportsDir, batch.id, 'failed.csv'), 'utf8')
      .trim()
      .split('\r\n');
    expect(failedCsv).toHaveLength(1 + permanent + 1);
    expect(failedCsv[0]).toBe('Customer Phone,WABA,Notes,status,error');
    const rejectedCsv = readFileSync(join(env.config.reportsDir, batch.id, 'rejected.csv'), 'utf8')
      .trim()
      .split('\r\n');
    expect(rejectedCsv).toHaveLength(1 + rejected);
    expect(JSON.stringify(summary)).not.toContain('key_test');
  });

  it('a broken file (unclosed quote) stops with file and line and leaves nothing in Redis', async () => {
    env = await makeTestEnv();
    const file = env.csv(
      'broken.csv',
      `phone,waba\n${phones(5)
        .map((p) => `${p},${WABA}`)
        .join('\n')}\n"919812345678,${WABA}\n919812345679,${WABA}\n`,
    );
    await expect(env.ingestCsv(file)).rejects.toThrow(/broken\.csv:7(:\d+)?: a quoted cell is never closed/);
    expect(await env.ctx.batches.list(10)).toHaveLength(0);
    const keys = await env.ctx.redis.keys(`{${env.config.queuePrefix}}:*`);
    expect(keys.filter((k) => !k.endsWith(':meta') && !k.endsWith(':events'))).toEqual([]);
  });
});
