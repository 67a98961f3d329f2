/**
 * The throughput chart's data: per-second counts merged into at most MAX_POINTS round-width buckets, and the
 * cache that must never serve a running batch's timeline once the batch has finished.
 */
import { describe, expect, it } from '@jest/globals';

import { bucketise, makeTimelineCache, MAX_POINTS } from '../../src/console/timeline.js';
import type { ChatResult } from '../../src/store/result-store.js';

type Counts = [number, number, number];

describe('bucketise', () => {
  it('keeps 1 s buckets for a short batch and fills gaps with zeros', () => {
    const t = bucketise(
      'b',
      new Map<number, Counts>([
        [100, [2, 0, 0]],
        [103, [1, 1, 0]],
      ]),
    );
    expect(t.bucketMs).toBe(1000);
    expect(t.points.map((p) => [p.t, p.succeeded, p.failed])).toEqual([
      [100_000, 2, 0],
      [101_000, 0, 0],
      [102_000, 0, 0],
      [103_000, 1, 1],
    ]);
  });

  it('starts at the batch start and merges a long batch into round buckets, losing no chat', () => {
    const perSecond = new Map<number, Counts>();
    for (let s = 0; s < 3600; s += 1) perSecond.set(10_000 + s, [1, s % 10 === 0 ? 1 : 0, 0]);
    const t = bucketise('b', perSecond, 9_990_000);
    expect(t.bucketMs).toBe(60_000); // 3610 s: 30 s buckets would be 121 points, one too many
    expect(t.points.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(t.points[0]?.t).toBeLessThanOrEqual(9_990_000);
    expect(t.points.reduce((n, p) => n + p.succeeded, 0)).toBe(3600);
    expect(t.points.reduce((n, p) => n + p.failed, 0)).toBe(360);
  });

  it('handles more seconds than a function call takes arguments', () => {
    const perSecond = new Map<number, Counts>();
    for (let s = 0; s < 300_000; s += 1) perSecond.set(s, [1, 0, 0]);
    const t = bucketise('b', perSecond);
    expect(t.points.reduce((n, p) => n + p.succeeded, 0)).toBe(300_000);
  });

  it('is empty when there is no result yet', () => {
    expect(bucketise('b', new Map())).toEqual({ batchId: 'b', bucketMs: 1000, points: [] });
  });
});

describe('makeTimelineCache', () => {
  function fakeResults(list: ChatResult[]) {
    let scans = 0;
    return {
      scans: () => scans,
      results: {
        async *scan() {
          scans += 1;
          for (const [i, r] of list.entries()) yield [`k${i}`, r] as [string, ChatResult];
        },
      } as never,
    };
  }
  const ok = (finishedAt: number): ChatResult => ({ state: 'succeeded', httpStatus: 201, attempts: 1, finishedAt, latencyMs: 5, reason: '' });

  it('reuses a timeline while nothing changed, recomputes when the batch finishes', async () => {
    const list = [ok(1000)];
    const fake = fakeResults(list);
    let clock = 0;
    const cache = makeTimelineCache({ results: fake.results }, () => clock);
    await cache.get({ id: 'b', status: 'running', done: 1 });
    list.push(ok(2000));
    clock = 1000;
    await cache.get({ id: 'b', status: 'running', done: 2 }); // within the throttle window: reused
    expect(fake.scans()).toBe(1);
    const final = await cache.get({ id: 'b', status: 'finished', done: 2 });
    expect(fake.scans()).toBe(2);
    expect(final.points.reduce((n, p) => n + p.succeeded, 0)).toBe(2);
    clock = 1_000_000;
    await cache.get({ id: 'b', status: 'finished', done: 2 });
    expect(fake.scans()).toBe(2); // a finished batch is computed once
  });
});
