/**
 * Group chats in a nightly rule, through `bulk-unassign schedule run-now` (a CLI subprocess) and an in-process
 * worker against the stand-in, which lists chats as documented (no groupId on them). Each group chat's groupId
 * is found by its name in its WABA number's group listing; checked against the stand-in's own log:
 *  - exactly the group chats whose name one group of their WABA number has are unassigned, each once;
 *  - a name two groups share, and a name no group has, are rejected rows with the reason in rejected.csv;
 *  - the group listing is paged, and asked once per WABA number per run (again on the next run).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';
import { parse } from 'csv-parse/sync';

import type { SeedChat, SeedGroup } from '../../src/devtools/mock-api.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
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
