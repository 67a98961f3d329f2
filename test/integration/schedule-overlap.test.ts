/**
 * The overlap rule of a schedule (--overlap skip|wait): a tick that finds the previous scheduled batch still
 * running skips (noted in that batch's report) or waits and starts once it settled (noted in its own report).
 * Driven by an inbox schedule ticking every second: file A makes a slow batch, file B arrives while A runs.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import type { BatchRecord } from '../../src/store/batch-store.js';
import { buildDefinition } from '../../src/schedule/definition.js';
import type { OverlapRule, ScheduleRun } from '../../src/schedule/store.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { scheduleStoreOf, waitForRuns } from '../helpers/schedule.js';

const WABA = '919000000000';
let env: TestEnv | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

/** Drops a CSV into the inbox the way the docs say: written under another name, then renamed. */
function drop(dir: string, name: string, numbers: readonly string[]): void {
  const part = join(dir, `.${name}.part`);
  writeFileSync(part, `phone\n${numbers.join('\n')}\n`);
  renameSync(part, join(dir, name));
}

interface Scenario {
  readonly a: BatchRecord;
  readonly b: BatchRecord;
  readonly runB: ScheduleRun;
  readonly runs: ScheduleRun[];
}

/** A = 12 chats at 250 ms each, one at a time (≈ 3 s); B = 3 chats dropped while A runs. */
async function scenario(overlap: OverlapRule): Promise<Scenario> {
  env = await makeTestEnv({ api: { latencyMs: 250 }, config: { workerConcurrency: 1 } });
  const inbox = join(env.dir, 'inbox');
  mkdirSync(inbox);
  drop(inbox, 'a.csv', phones(12, 0));
  const store = scheduleStoreOf(env.ctx);
  await store.save(
    buildDefinition('nightly', { cron: '* * * * * *', tz: 'UTC', inbox, waba: WABA, overlap }, { cwd: env.dir, now: Date.now(), defaultTz: 'UTC' }),
  );
  env.worker();

  const started = (r: ScheduleRun): boolean => r.outcome === 'started';
  const runA = (await waitForRuns(store, 'nightly', 1, started)).find(started)!;
  const aId = runA.batchIds[0]!;
  expect((await env.ctx.batches.require(aId)).status).toBe('running');
  drop(inbox, 'b.csv', phones(3, 100));
  const runB = (await waitForRuns(store, 'nightly', 2, started)).filter(started)[1]!;
  const a = await env.waitFor(aId, ['finished']);
  const b = await env.waitFor(runB.batchIds[0]!, ['finished']);
  const runs = (await store.runs('nightly')).reverse().filter((r) => r.startedAt <= runB.startedAt);
  await store.remove('nightly');

  expect(b.createdAt).toBeGreaterThanOrEqual(a.finishedAt!);
  const stats = env.api.stats();
  expect(Object.keys(stats.unassigned)).toHaveLength(15);
  expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
  expect(existsSync(join(inbox, 'processed', 'a.csv')) && existsSync(join(inbox, 'processed', 'b.csv'))).toBe(true);
  return { a, b, runB, runs };
}

const summaryOf = (batch: BatchRecord): { notes: string[] } => JSON.parse(readFileSync(join(env!.config.reportsDir, batch.id, 'summary.json'), 'utf8'));

describe('schedule overlap rule', () => {
  it('skip: ticks during the previous batch are skipped, and its report says so', async () => {
    const { a, b, runs } = await scenario('skip');
    const skipped = runs.filter((r) => r.outcome === 'skipped');
    expect(skipped.length).toBeGreaterThanOrEqual(1);
    for (const r of skipped) expect(r.message).toBe(`skipped: previous scheduled batch ${a.id} still running (--overlap skip)`);
    expect(new Set(runs.map((r) => r.tick)).size).toBe(runs.length);
    const skipNotes = summaryOf(a).notes.filter((n) => n.endsWith('skipped: this batch was still running (--overlap skip)'));
    expect(skipNotes.length).toBeGreaterThanOrEqual(1);
    expect(b.notes.some((n) => n.startsWith('waited'))).toBe(false);
  });

  it('wait: the first tick during the previous batch waits and starts when it settles; its report says so', async () => {
    const { a, b, runB, runs } = await scenario('wait');
    // B's run belongs to a tick planned while A was still running, and started only after A finished.
    expect(runB.tick).toBeLessThan(a.finishedAt!);
    expect(runB.startedAt).toBeGreaterThanOrEqual(a.finishedAt!);
    const waited = summaryOf(b).notes.find((n) => n.startsWith('waited'));
    expect(waited).toMatch(new RegExp(`^waited \\d+ s before starting: previous scheduled batch ${a.id} still running \\(--overlap wait\\)$`));
    // Ticks that came while it waited were skipped in its favour (one waiter at a time).
    const skipped = runs.filter((r) => r.outcome === 'skipped');
    expect(skipped.length).toBeGreaterThanOrEqual(1);
    for (const r of skipped) expect(r.message).toMatch(/^skipped: the run for .* is waiting to start \(--overlap wait\)$/);
    expect(new Set(runs.map((r) => r.tick)).size).toBe(runs.length);
    expect(summaryOf(a).notes.some((n) => n.includes('skipped'))).toBe(false);
  });
});
