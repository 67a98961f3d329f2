/**
 * Scheduled cleanup: a schedule made with `bulk-unassign schedule set` is a BullMQ job scheduler in
 * Redis; `worker` processes run its ticks. Checked against the stand-in server's own log:
 *  - one run per tick with two worker processes (one in-process, one `bulk-unassign worker` subprocess);
 *  - GET /chats paged through more than one page, exactly as many list calls as runs × pages;
 *  - exactly the chats the rule selects are unassigned, each once;
 *  - the schedule survives everything being closed and fires for a new worker;
 *  - the listing keeps to the global rate limit, and survives 429s like unassign calls do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { makeApiClient } from '../../src/execution/api-client.js';
import { describeRule } from '../../src/schedule/rule.js';
import { openChatQuerySource, QUERY_HEADER } from '../../src/schedule/chat-source.js';
import type { SeedChat } from '../../src/devtools/mock-api.js';
import { makePacer } from '../../src/execution/pacer.js';
import { buildDefinition } from '../../src/schedule/definition.js';
import { localDate } from '../../src/schedule/run.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
import { killAllChildren, spawnCli, spawnWorker } from '../helpers/processes.js';
import { scheduleStoreOf, startExtraWorker, waitForRuns } from '../helpers/schedule.js';

const WABA = '919000000000';
const TZ = 'Asia/Kolkata';
const EVERY_SECOND = '* * * * * *';
const HOUR = 3_600_000;

let env: TestEnv | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  env = undefined;
});

const keyOf = (c: SeedChat): string => (c.chatType === 'WA_GROUP' ? `g:${c.groupId}` : `p:${c.phoneNumber}@${c.wabaNumber}`);

describe('schedule: nightly cleanup from a GET /chats rule', () => {
  it('runs once per tick with two worker processes, pages through GET /chats, unassigns exactly the selected chats', async () => {
    env = await makeTestEnv({ api: { seedChats: 1000 }, config: { workerConcurrency: 4 } });
    const before = env.api.chats();
    // The rule: done, on WABA, still assigned, no message for 12 h. The server filters status and waba only.
    const selected = (now: number): Set<string> =>
      new Set(before.filter((c) => c.isDone && c.wabaNumber === WABA && c.assignedUserNumber !== null && c.lastMessageTime <= now - 12 * HOUR).map(keyOf));
    const serverMatched = before.filter((c) => c.isDone && c.wabaNumber === WABA).length;
    const pagesPerRun = Math.ceil(serverMatched / 100);
    expect(pagesPerRun).toBeGreaterThan(1);

    const set = spawnCli(env, ['schedule', 'set', '--cron', EVERY_SECOND, '--tz', TZ, '--chat-status', 'done', '--idle-hours', '12', '--waba', WABA]);
    expect((await set.exited).code).toBe(0);
    expect(set.output()).toContain('created schedule nightly');
    const inProcess = env.worker();
    const subprocess = await spawnWorker(env);

    const store = scheduleStoreOf(env.ctx);
    const first = await waitForRuns(store, 'nightly', 1, (r) => r.outcome === 'started');
    const startedRun = first.find((r) => r.outcome === 'started')!;
    expect(startedRun.batchIds).toHaveLength(1);
    const batch = await env.waitFor(startedRun.batchIds[0]!, ['finished']);
    // Ticks after the batch finished find nothing left to unassign.
    await waitForRuns(store, 'nightly', 3, (r) => r.outcome === 'empty' && r.startedAt > (batch.finishedAt ?? 0));
    // Stop both workers gracefully (runs in flight finish and log themselves), then read the log.
    subprocess.kill('SIGTERM');
    await Promise.all([inProcess.close(), subprocess.exited]);

    const runs = (await store.runs('nightly')).reverse();
    const ticks = runs.map((r) => r.tick);
    expect(new Set(ticks).size).toBe(runs.length); // no tick ran twice
    expect(ticks.every((t) => t % 1000 === 0)).toBe(true); // every run is a planned tick
    expect(runs.filter((r) => r.outcome === 'started')).toHaveLength(1);
    expect(runs.filter((r) => r.outcome === 'failed')).toEqual([]);
    // A tick skips while the batch runs, or (on a slow machine) while the run before it is still reading GET /chats.
    const skipReasons = [
      `skipped: previous scheduled batch ${batch.id} still running (--overlap skip)`,
      'skipped: another run of this schedule is still reading its sources (--overlap skip)',
    ];
    for (const r of runs.filter((x) => x.outcome === 'skipped')) expect(skipReasons).toContain(r.message);
    const listingRuns = runs.filter((r) => r.outcome === 'started' || r.outcome === 'empty').length;
    const stats = env.api.stats();
    expect(stats.listRequests).toBe(listingRuns * pagesPerRun);

    const expected = selected(startedRun.tick);
    expect(selected(Date.now())).toEqual(expected); // no chat crossed the 12 h line while the test ran
    expect(new Set(Object.keys(stats.unassigned))).toEqual(expected);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    expect(
      env.api
        .chats()
        .filter((c) => expected.has(keyOf(c)))
        .every((c) => c.assignedUserNumber === null),
    ).toBe(true);

    expect(batch).toMatchObject({
      kind: 'nightly',
      name: `nightly-${localDate(startedRun.tick, TZ)}`,
      source: describeRule({ chatStatus: 'done', idleHours: 12, wabaNumbers: [WABA] }),
    });
    expect(batch.counts).toMatchObject({ rows: expected.size, valid: expected.size, rejected: 0, duplicates: 0, succeeded: expected.size, failed: 0 });
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, batch.id, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ kind: 'nightly', status: 'finished', counts: { succeeded: expected.size } });
    expect(summary.notes[0]).toMatch(/^scheduled run of "nightly" for \d{4}-\d\d-\d\d \d\d:\d\d:\d\d Asia\/Kolkata$/);
    expect(readFileSync(join(env.config.reportsDir, batch.id, 'failed.csv'), 'utf8').split('\r\n')[0]).toBe([...QUERY_HEADER, 'status', 'error'].join(','));
  });

  it('survives a restart: with every process closed, a new context and worker find the schedule and it fires', async () => {
    env = await makeTestEnv({ api: { seedChats: 50 } });
    const first = startExtraWorker(env);
    const store1 = scheduleStoreOf(first.ctx);
    await store1.save(buildDefinition('nightly', { cron: EVERY_SECOND, tz: TZ, tag: 'vip' }, { cwd: env.dir, now: Date.now(), defaultTz: 'UTC' }));
    await waitForRuns(store1, 'nightly', 2);
    await first.close();
    const closedAt = Date.now();
    const runsBefore = (await scheduleStoreOf(env.ctx).runs('nightly')).length;

    const second = startExtraWorker(env);
    try {
      const store2 = scheduleStoreOf(second.ctx);
      expect((await store2.list()).map((d) => d.name)).toEqual(['nightly']);
      expect(await store2.nextRun('nightly')).toEqual(expect.any(Number));
      const runs = await waitForRuns(store2, 'nightly', 2, (r) => r.startedAt > closedAt);
      expect(runs.length).toBeGreaterThanOrEqual(runsBefore + 2);
      expect(new Set(runs.map((r) => r.tick)).size).toBe(runs.length);
      // The first run picked the vip chats; the later ones found them done.
      expect(runs.filter((r) => r.outcome === 'started')).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it("the listing keeps to the global rate limit (no 429), and without pacing survives the server's 429s", async () => {
    env = await makeTestEnv({ api: { seedChats: 300, rateLimit: { max: 3, windowMs: 1000 } } });
    const rule = { chatStatus: 'done' as const, wabaNumbers: [WABA] };
    const serverMatched = env.api.chats().filter((c) => c.isDone && c.wabaNumber === WABA).length;
    const expected = env.api
      .chats()
      .filter((c) => c.isDone && c.wabaNumber === WABA && c.assignedUserNumber !== null)
      .map(keyOf)
      .sort();
    const pages = Math.ceil(serverMatched / 20);
    const api = makeApiClient({ baseUrl: env.config.baseUrl, apiKey: env.config.apiKey!, requestTimeoutMs: 2000 });
    const read = async (max: number): Promise<{ keys: string[]; pages: number }> => {
      const pacer = makePacer(env!.ctx.redis, env!.ctx.keys, { max, durationMs: 1000 });
      const source = openChatQuerySource({
        api,
        rule,
        now: Date.now(),
        pace: () => pacer.acquire(),
        rateLimit: (ms) => pacer.pause(ms),
        maxAttempts: 3,
        backoffDelayMs: 100,
        pageSize: 20,
      });
      const keys: string[] = [];
      for await (const row of source.rows()) if (row.kind === 'valid') keys.push(row.row.key);
      return { keys: keys.sort(), pages: source.stats().pages };
    };
    try {
      const paced = await read(2); // the pacer a little under the server's limit, as an operator would set it
      expect(paced).toEqual({ keys: expected, pages });
      expect(env.api.stats().listRequests).toBe(pages); // every call inside the limit: not one 429
      env.api.reset();
      const unpaced = await read(0);
      expect(unpaced).toEqual({ keys: expected, pages });
      expect(env.api.stats().listRequests).toBeGreaterThan(pages); // 429s happened and were retried
    } finally {
      api.close();
    }
  });

  it('a scheduled batch is a normal batch: failed.csv lists its failures with the query columns, and `rerun` retries them', async () => {
    env = await makeTestEnv({ api: { seedChats: 60 }, config: { maxAttempts: 2 } });
    const vip = env.api.chats().filter((c) => c.tagNames.includes('vip') && c.assignedUserNumber !== null);
    const [refused, flaky] = vip.filter((c) => c.chatType === 'INDIVIDUAL') as [SeedChat, SeedChat];
    env.api.setFaults({ rejectNumbers: [refused.phoneNumber!], flaky: { [flaky.phoneNumber!]: 10 } });
    expect((await spawnCli(env, ['schedule', 'set', '--cron', '0 2 * * *', '--tag', 'vip']).exited).code).toBe(0);
    env.worker();
    const runNow = spawnCli(env, ['schedule', 'run-now', '--wait', '--json', '-q']);
    expect((await runNow.exited).code).toBe(1); // finished, with failures
    const batchId = JSON.parse(runNow.output().slice(0, runNow.output().lastIndexOf('}') + 1)).run.batchIds[0] as string;
    const batch = await env.waitFor(batchId, ['finished']);
    expect(batch.counts).toMatchObject({ valid: vip.length, succeeded: vip.length - 2, failed: 2 });
    const failed = readFileSync(join(env.config.reportsDir, batchId, 'failed.csv'), 'utf8')
      .trim()
      .split('\r\n');
    expect(failed).toHaveLength(3);
    expect(
      failed
        .slice(1)
        .map((line) => line.split(',')[0])
        .sort(),
    ).toEqual([refused.phoneNumber, flaky.phoneNumber].sort());
    expect(failed.slice(1).every((line) => line.split(',')[1] === refused.wabaNumber || line.split(',')[1] === flaky.wabaNumber)).toBe(true);

    env.api.setFaults({});
    const rerun = spawnCli(env, ['rerun', batchId, '--include-permanent', '-q']);
    expect((await rerun.exited).code).toBe(0);
    const child = (await env.ctx.batches.require(batchId)).children[0]!;
    expect(await env.ctx.batches.require(child)).toMatchObject({ kind: 'rerun', parent: batchId, status: 'finished', counts: { valid: 2, succeeded: 2 } });
    expect(Object.keys(env.api.stats().unassigned)).toHaveLength(vip.length);
  });

  it('`schedule show` and `--json` describe it; `remove` deletes scheduler, definition and history', async () => {
    env = await makeTestEnv();
    const set = spawnCli(env, [
      'schedule',
      'set',
      'vip-sweep',
      '--cron',
      '0 2 * * *',
      '--tz',
      TZ,
      '--tag',
      'vip',
      '--agent',
      '+91 98111 11111',
      '--overlap',
      'wait',
    ]);
    expect((await set.exited).code).toBe(0);
    const show = spawnCli(env, ['schedule', 'show', 'vip-sweep', '--json']);
    expect((await show.exited).code).toBe(0);
    const shown = JSON.parse(show.output());
    expect(shown).toMatchObject({ name: 'vip-sweep', cron: '0 2 * * *', tz: TZ, overlap: 'wait', query: { tags: ['vip'], agent: '919811111111' }, runs: [] });
    // 02:00 in Kolkata is 20:30 UTC.
    expect(new Date(shown.nextRun).toISOString()).toMatch(/T20:30:00\.000Z$/);
    const text = spawnCli(env, ['schedule', 'show']);
    await text.exited;
    expect(text.output()).toContain('when     0 2 * * * (Asia/Kolkata); next run ');
    expect(text.output()).toContain('02:00:00 Asia/Kolkata');

    const bad = spawnCli(env, ['schedule', 'set', '--cron', '0 2 * * *', '--inbox', join(env.dir, 'missing')]);
    expect((await bad.exited).code).toBe(2);
    expect(bad.output()).toContain('no such folder');
    const unknown = spawnCli(env, ['schedule', 'run-now', 'nope']);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.output()).toContain('no schedule named "nope" (schedules: vip-sweep)');

    const rm = spawnCli(env, ['schedule', 'remove', 'vip-sweep']);
    expect((await rm.exited).code).toBe(0);
    expect(await env.ctx.queue.getJobSchedulersCount()).toBe(0);
    expect(await scheduleStoreOf(env.ctx).list()).toEqual([]);
    expect(existsSync(env.dir)).toBe(true);
    const again = spawnCli(env, ['schedule', 'remove', 'vip-sweep']);
    expect((await again.exited).code).toBe(2);
  });
});
