/** Pure pieces of recording and reporting: result encoding, latency percentiles, job ids, priorities, failed.csv columns. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { newBatchId } from '../../src/store/batch-store.js';
import { failedColumns } from '../../src/report/report.js';
import { jobIdFor, priorityFor } from '../../src/store/queue.js';
import { type ChatResult, decodeResult, encodeResult, latencyBucket, percentileOf } from '../../src/store/result-store.js';

describe('result encoding', () => {
  it('round-trips any result, with reasons cleaned of separators and line breaks', () => {
    fc.assert(
      fc.property(
        fc.record({
          state: fc.constantFrom('succeeded', 'failed', 'cancelled' as const),
          httpStatus: fc.integer({ min: 0, max: 599 }),
          attempts: fc.integer({ min: 0, max: 50 }),
          finishedAt: fc.integer({ min: 0, max: 2 ** 42 }),
          latencyMs: fc.integer({ min: 0, max: 60_000 }),
          failureClass: fc.constantFrom('permanent' as const, 'transient' as const),
          reason: fc.string({ maxLength: 50 }).map((s) => s.replace(/[|\r\n]/g, ' ')),
        }),
        (r) => {
          const decoded = decodeResult(encodeResult(r as ChatResult));
          expect(decoded).toEqual(r);
        },
      ),
    );
    const messy = decodeResult(
      encodeResult({ state: 'failed', httpStatus: 422, attempts: 1, finishedAt: 1, latencyMs: 3, failureClass: 'permanent', reason: 'a|b\r\nc' }),
    );
    expect(messy.reason).not.toMatch(/[|\r\n]/);
  });

  it('buckets latency and computes percentiles to the bucket width', () => {
    expect([0, 1.2, 100, 101, 999, 1001, 12_345].map(latencyBucket)).toEqual([0, 2, 100, 110, 1000, 1100, 13_000]);
    const hist = new Map<number, number>([
      [2, 50],
      [5, 45],
      [110, 4],
      [1100, 1],
    ]);
    expect([percentileOf(hist, 50), percentileOf(hist, 95), percentileOf(hist, 99), percentileOf(hist, 100)]).toEqual([2, 5, 110, 1100]);
    expect(percentileOf(new Map(), 50)).toBeNull();
  });
});

describe('job ids and priorities', () => {
  it('derives a deterministic id without ":" (BullMQ rejects it) or the phone number (personal data), distinct per chat', () => {
    const batch = newBatchId(new Date('2026-11-25T02:00:00Z'));
    expect(batch).toMatch(/^20261125-020000-[0-9a-f]{6}$/);
    const a = jobIdFor(batch, 'p:919812345678@919000000000');
    expect(a).toMatch(new RegExp(`^${batch}-[0-9a-f]{24}$`));
    expect(a).not.toContain('919812345678');
    expect(jobIdFor(batch, 'p:919812345678@919000000000')).toBe(a);
    const g1 = jobIdFor(batch, 'g:grp:1');
    const g2 = jobIdFor(batch, 'g:grp:2');
    expect([a, g1, g2].every((id) => !id.includes(':'))).toBe(true);
    expect(g1).not.toBe(g2);
  });

  it('gives the n-th chat of every batch priority n, capped at BullMQ’s maximum', () => {
    expect([0, 1, 99].map(priorityFor)).toEqual([1, 2, 100]);
    expect(priorityFor(10 ** 9)).toBe(2 ** 21 - 1);
  });
});

describe('failed.csv columns', () => {
  it('appends status and error, suffixing them when the source already has such columns', () => {
    expect(failedColumns(['phone', 'note']).header).toEqual(['phone', 'note', 'status', 'error']);
    expect(failedColumns(['phone', 'status', 'error']).header.slice(3)).not.toContain('status');
  });
});
