/**
 * Group chats in a nightly rule, through `bulk-unassign schedule run-now` (a CLI subprocess) and an in-process
 * worker against the stand-in, which lists chats as documented (no groupId on them). Each group chat's groupId
 * is found by its name in its WABA number's group listing; checked against the stand-in's own log:
 *  - exactly the group chats whose name one group of their WABA number has are unassigned, each once;
 *  - a name two groups share, and a name no group has, are rejected rows with the reason in rejected.csv;
 *  - the group listing is paged, and asked once per WABA number per run (again on the next run);
 *  - its pages, like GET /chats pages, take the global pacer's slots: at a fixed RATE_LIMIT_MAX a run started by
 *    hand stays under the stand-in's window, and with RATE_LIMIT_MAX=auto every answer is counted by the adaptive
 *    limit that paces them (a run-now pacing itself at the ceiling would outrun the limit and teach it nothing).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';
import { parse } from 'csv-parse/sync';

import { adaptiveSettingsOf, makeAdaptiveLimiter } from '../../src/execution/adaptive-limiter.js';
import type { SeedChat, SeedGroup } from '../../src/devtools/mock-api.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
import { eventually } from '../helpers/eventually.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';

const WABA = '919000000000';
const WABA2 = '919000000001';
const NOW = Date.now();
const HOUR = 3_600_000;

let env: TestEnv | undefined;
afterEach(async () => {
  await killAllChildren();
  await env?.cleanup();
  env = undefined;
});

let n = 0;
/** A done, assigned chat; a group chat's groupId is the stand-in's bookkeeping only (and gives it a listed group). */
function chat(name: string, wabaNumber: string, over: Partial<SeedChat> = {}): SeedChat {
  n += 1;
  const time = NOW - (n + 1) * HOUR;
  return {
    id: `chat_${String(n).padStart(6, '0')}`,
    chatType: 'WA_GROUP',
    name,
    phoneNumber: null,
    wabaNumber,
    assignedUserName: 'Asha',
    assignedUserNumber: '919811111111',
    isDone: true,
    unreadCount: 0,
    chatUpdatedTime: time,
    lastMessageTime: time,
    tagNames: [],
    ...over,
  };
}
const extraGroup = (groupId: string, subject: string, wabaNumber: string, daysAgo: number): SeedGroup => ({
  groupId,
  subject,
  wabaNumber,
  groupCreatedAt: NOW - daysAgo * 24 * HOUR,
});

describe('schedule: group chats found by name', () => {
  it('unassigns the group chats whose name is one group of their WABA number, and reports the ambiguous and unknown ones', async () => {
    const chats = [
      chat('Support Pune', WABA, { groupId: 'grp_pune' }),
      chat('Sales Mumbai', WABA, { groupId: 'grp_mumbai' }),
      chat('Support Pune', WABA2, { groupId: 'grp_pune2' }), // the same name on another WABA number is another group
      chat('Ops', WABA, { groupId: 'grp_ops_a' }), // a second group "Ops" below: ambiguous
      chat('Old Project', WABA), // no group of that name is listed: unknown
      chat('Customer', WABA, { chatType: 'INDIVIDUAL', phoneNumber: '919812345678' }),
      chat('Unassigned', WABA, { groupId: 'grp_free', assignedUserName: null, assignedUserNumber: null }), // not selected: nothing to resolve
    ];
    const groups = [
      extraGroup('grp_ops_b', 'Ops', WABA, 90),
      extraGroup('grp_old_x', 'Old Project', WABA2, 90), // the right name on the wrong WABA number does not count
      ...['Alpha', 'Beta', 'Gamma', 'Delta', 'Epsilon'].map((s, i) => extraGroup(`grp_f${i}`, s, WABA, 40 + i)),
    ];
    env = await makeTestEnv({ api: { chats, groups, groupPageSize: 3 } });
    const wabaGroups = env.api.groups().filter((g) => g.wabaNumber === WABA).length;
    const pagesPerRun = Math.ceil(wabaGroups / 3) + 1; // WABA over several pages, WABA2 in one
    expect(Math.ceil(wabaGroups / 3)).toBeGreaterThan(2);

    const set = spawnCli(env, ['schedule', 'set', 'groups', '--cron', '0 2 * * *', '--tz', 'UTC', '--chat-status', 'done']);
    expect((await set.exited).code).toBe(0);
    env.worker();
    const runNow = spawnCli(env, ['schedule', 'run-now', 'groups', '--wait', '--json', '-q']);
    await runNow.exited;
    const out = runNow.output();
    const batchId = JSON.parse(out.slice(0, out.lastIndexOf('}') + 1)).run.batchIds[0] as string;
    const batch = await env.waitFor(batchId, ['finished']);

    const stats = env.api.stats();
    expect(Object.keys(stats.unassigned).sort()).toEqual(['g:grp_mumbai', 'g:grp_pune', 'g:grp_pune2', `p:919812345678@${WABA}`]);
    expect(Object.values(stats.unassigned).every((count) => count === 1)).toBe(true);
    expect(stats.groupListRequests).toBe(pagesPerRun);
    expect(stats.byStatus).toEqual({ '201': 4 });
    expect(batch.counts).toMatchObject({ rows: 6, valid: 4, rejected: 2, succeeded: 4, failed: 0 });

    const rejected = parse(readFileSync(join(env.config.reportsDir, batchId, 'rejected.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rejected.map((r) => [r.column, r.value, r.reason])).toEqual([
      ['groupId', 'Ops', `group name "Ops" matches 2 groups of ${WABA}: cannot tell which`],
      ['groupId', 'Old Project', `no group named "Old Project" on WABA ${WABA}`],
    ]);
    expect(
      env.api
        .chats()
        .filter((c) => c.name === 'Ops' || c.name === 'Old Project')
        .every((c) => c.assignedUserNumber === '919811111111'),
    ).toBe(true);

    // The next run lists the groups again (the cache lives for one run): the two rejected chats are still assigned.
    const again = spawnCli(env, ['schedule', 'run-now', 'groups', '--wait', '--json', '-q']);
    await again.exited;
    expect(again.output()).toContain('nothing to unassign');
    expect(env.api.stats().groupListRequests).toBe(pagesPerRun + Math.ceil(wabaGroups / 3)); // only WABA has a group chat left
    expect(Object.keys(env.api.stats().unassigned)).toHaveLength(4);
  });
});

/** A rule over one unassigned-by-name group chat whose WABA number has `groups` groups, listed two per page. */
function pagedInbox(groups: number): { chats: SeedChat[]; groups: SeedGroup[] } {
  return {
    chats: [chat('Needle', WABA, { groupId: 'grp_needle' })],
    groups: Array.from({ length: groups }, (_, i) => extraGroup(`grp_hay${String(i).padStart(2, '0')}`, `Hay ${i}`, WABA, 10 + i)),
  };
}

describe('schedule: group listing pages share the global rate limit', () => {
  it('at a fixed RATE_LIMIT_MAX, a run-now pages through the groups at that pace and stays under the window', async () => {
    // The stand-in allows 5 calls a second, the pacer 4: only a listing that skipped the pacer could meet a 429.
    env = await makeTestEnv({
      api: { ...pagedInbox(17), groupPageSize: 2, rateLimit: { max: 5, windowMs: 1000 } },
      config: { rateLimitMax: 4, rateLimitDurationMs: 1000 },
    });
    expect((await spawnCli(env, ['schedule', 'set', 'paged', '--cron', '0 2 * * *', '--tz', 'UTC', '--chat-status', 'done']).exited).code).toBe(0);
    const started = Date.now();
    const run = spawnCli(env, ['schedule', 'run-now', 'paged', '--dry-run', '--json', '-q']);
    expect((await run.exited).code).toBe(0);
    const elapsed = Date.now() - started;

    const stats = env.api.stats();
    expect(stats.groupListRequests).toBe(9); // 18 groups, two a page
    expect(stats.listRateLimited).toBe(0);
    // 10 calls, at most 4 in any window of a little over a second: the last one is at least two windows after the first.
    expect(stats.listRequests + stats.groupListRequests).toBe(10);
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(run.output()).toMatch(/"valid": 1,\s*"rejected": 0,/); // the group chat was found by name
  });

  it('with RATE_LIMIT_MAX=auto, a run-now paces its pages by the adaptive rate and every answer, 429s included, is counted by it', async () => {
    const auto = { rateLimitMax: 'auto', rateLimitCeiling: 40, rateLimitStart: 3, rateLimitDurationMs: 1000 } as const;
    env = await makeTestEnv({ api: { ...pagedInbox(17), groupPageSize: 2, rateLimit: { max: 4, windowMs: 1000 } }, config: auto });
    const autoEnv = { RATE_LIMIT_MAX: 'auto', RATE_LIMIT_CEILING: '40', RATE_LIMIT_START: '3' };
    expect((await spawnCli(env, ['schedule', 'set', 'paged', '--cron', '0 2 * * *', '--tz', 'UTC', '--chat-status', 'done'], autoEnv).exited).code).toBe(0);
    const run = spawnCli(env, ['schedule', 'run-now', 'paged', '--dry-run', '--json', '-q'], autoEnv);
    expect((await run.exited).code).toBe(0);
    expect(run.output()).toMatch(/"valid": 1,\s*"rejected": 0,/); // the group chat was found by name

    const stats = env.api.stats();
    expect(stats.groupListRequests).toBeGreaterThanOrEqual(9);
    const answers = stats.listRequests + stats.groupListRequests;
    const limiter = makeAdaptiveLimiter(env.ctx.redis, {
      keys: env.ctx.keys,
      baseUrl: env.config.baseUrl,
      apiKey: env.config.apiKey ?? '',
      settings: adaptiveSettingsOf(env.config),
    });
    // The CLI reports what it counted before it exits; read until the state holds every answer the stand-in gave.
    const view = await eventually(
      async () => {
        const v = await limiter.view();
        return v.ok + v.rateLimited >= answers && v;
      },
      { timeoutMs: 5000, message: () => `the adaptive state to count the listing's ${answers} answers` },
    );
    expect(view).toMatchObject({ ok: answers - stats.listRateLimited, rateLimited: stats.listRateLimited });
    // Paced from the start rate (3 a second against the stand-in's 4), not the ceiling (40): a 429 or two while the
    // rate probes upwards, never one for most pages.
    expect(stats.listRateLimited).toBeLessThanOrEqual(3);
  });
});
