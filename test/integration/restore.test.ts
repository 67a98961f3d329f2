/**
 * Undo: `restore` gives every chat a batch unassigned back to the agent it had, checked chat by chat against the
 * stand-in server's memory of each chat's agent (real Redis, real HTTP, real BullMQ):
 *  - a scheduled (GET /chats rule) batch, then its restore: every chat has its original agent again, except the
 *    ones someone assigned in between, which keep their new agent (skipped, never taken away);
 *  - a CSV batch run with --capture-assignees, then its restore, the same way (a chat found without an agent is
 *    skipped and not called; a group chat, which cannot be captured, is skipped and not unassigned);
 *  - a CSV with an agent column restores without capture;
 *  - refusals: a restore of a restore, a second restore without --force, two restores at once (exactly one made);
 *  - each restore leaves one audit entry.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import type { Actor } from '../../src/domain/actor.js';
import { BatchStateError, NoValidRowsError } from '../../src/domain/errors.js';
import { GROUP_NOT_CAPTURED } from '../../jobs/unassign.js';
import { ASSIGNED_SINCE_REASON } from '../../src/execution/classify.js';
import { restoreBatch } from '../../src/ops/restore.js';
import { rerunBatch } from '../../src/ops/rerun.js';
import { buildDefinition } from '../../src/schedule/definition.js';
import type { BatchRecord } from '../../src/store/batch-store.js';
import type { SeedChat } from '../../src/devtools/mock-api.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { scheduleStoreOf, waitForRuns } from '../helpers/schedule.js';
import { closeTestConsole, startTestConsole, type TestConsole } from '../helpers/console.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';

const WABA = '919000000000';
const AGENTS = ['919811111111', '919822222222', '919833333333'] as const;
const NEWCOMER = '919844444444';
const ALICE: Actor = { name: 'alice', via: 'cli' };

let env: TestEnv | undefined;
let con: TestConsole | undefined;
afterEach(async () => {
  await killAllChildren();
  if (con) await closeTestConsole(con, env);
  else await env?.cleanup();
  [con, env] = [undefined, undefined];
});

const keyOf = (phone: string): string => `p:${phone}@${WABA}`;

async function resultsOf(e: TestEnv, batchId: string): Promise<Map<string, { state: string; reason: string }>> {
  const out = new Map<string, { state: string; reason: string }>();
  for await (const [key, r] of e.ctx.results.scan(batchId)) out.set(key, { state: r.state, reason: r.reason });
  return out;
}

/** Every chat's agent in the stand-in now, for `keys`. */
const agentsNow = (e: TestEnv, keys: Iterable<string>): Map<string, string | null | undefined> => new Map([...keys].map((k) => [k, e.api.agentOf(k)]));

/**
 * Runs the restore of `parent` to its end and checks it chat by chat: every chat the parent unassigned has its
 * `original` agent again, except those in `reassigned` (keys → their new agent), which keep it and are skipped.
 */
async function restoreAndCheck(
  e: TestEnv,
  parent: BatchRecord,
  original: ReadonlyMap<string, string>,
  reassigned: ReadonlyMap<string, string>,
): Promise<BatchRecord> {
  const restore = await e.waitFor((await restoreBatch(e.ctx, parent.id, { actor: ALICE })).id, ['finished']);
  expect(restore).toMatchObject({ kind: 'restore', action: 'assign', parent: parent.id, createdBy: 'alice' });
  expect(restore.counts).toMatchObject({ valid: original.size, succeeded: original.size - reassigned.size, skipped: reassigned.size, failed: 0 });
  const now = agentsNow(e, original.keys());
  for (const [key, agent] of original) expect([key, now.get(key)]).toEqual([key, reassigned.get(key) ?? agent]);
  const results = await resultsOf(e, restore.id);
  for (const key of reassigned.keys()) expect(results.get(key)?.reason).toContain(ASSIGNED_SINCE_REASON);
  // Each chat was asked once (a 409 is an answer, not something to retry), the reassigned ones answered 409.
  const stats = e.api.stats();
  expect(stats.assignRequests).toBe(original.size);
  expect(stats.assignByStatus).toEqual({ 201: original.size - reassigned.size, ...(reassigned.size > 0 ? { 409: reassigned.size } : {}) });
  // One audit entry per restore, naming the new batch, its parent and its chats.
  const audit = await e.ctx.audit.list({ batchId: restore.id });
  expect(audit.map((a) => ({ action: a.action, actor: a.actor, details: a.details }))).toEqual([
    { action: 'restore', actor: 'alice', details: { parent: parent.id, chats: original.size } },
  ]);
  return restore;
}

describe('restore: a scheduled batch', () => {
  it('gives every chat back to its original agent, except the ones assigned to someone in between', async () => {
    env = await makeTestEnv({ api: { seedChats: 80 } });
    const before = env.api.chats().filter((c) => c.wabaNumber === WABA);
    const chatKey = (c: SeedChat): string => (c.chatType === 'WA_GROUP' ? `g:${c.groupId!}` : keyOf(c.phoneNumber!));
    const original = new Map(before.filter((c) => c.assignedUserNumber !== null).map((c) => [chatKey(c), c.assignedUserNumber!]));
    const unassignedBefore = before.filter((c) => c.assignedUserNumber === null).map(chatKey);
    expect(original.size).toBeGreaterThan(10);
    expect([...original.keys()].some((k) => k.startsWith('g:'))).toBe(true); // group chats too (found by name)

    const store = scheduleStoreOf(env.ctx);
    await store.save(
      buildDefinition('nightly', { cron: '* * * * * *', tz: 'UTC', chatStatus: 'all', waba: WABA }, { cwd: env.dir, now: Date.now(), defaultTz: 'UTC' }),
    );
    env.worker();
    const started = (await waitForRuns(store, 'nightly', 1, (r) => r.outcome === 'started')).find((r) => r.outcome === 'started')!;
    await store.remove('nightly'); // one run: a later tick would unassign the restored chats again
    const parent = await env.waitFor(started.batchIds[0]!, ['finished']);
    expect(parent.counts).toMatchObject({ succeeded: original.size, failed: 0 });
    expect(parent.restorable).toBe(original.size);
    for (const key of original.keys()) expect(env.api.agentOf(key)).toBeNull();
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, parent.id, 'summary.json'), 'utf8')) as { restorable: number };
    expect(summary.restorable).toBe(original.size);
    expect(readFileSync(join(env.config.reportsDir, parent.id, 'summary.md'), 'utf8')).toContain(`**Restorable:** ${original.size} of ${original.size}`);

    // Someone assigns three of the chats in between: those stay with their new agent.
    const reassigned = new Map([...original.keys()].slice(0, 3).map((k) => [k, NEWCOMER]));
    for (const [key, agent] of reassigned) env.api.setAgent(key, agent);
    env.api.reset();
    const restore = await restoreAndCheck(env, parent, original, reassigned);
    // Chats that had no agent before the batch were never touched, and have none now.
    for (const key of unassignedBefore) expect(env.api.agentOf(key)).toBeNull();
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([restore.id]);

    // A restore of a restore is refused; so is a second restore without --force.
    await expect(restoreBatch(env.ctx, restore.id, { actor: ALICE })).rejects.toThrow(/is a restore .*refused/);
    await expect(restoreBatch(env.ctx, parent.id, { actor: ALICE })).rejects.toThrow(new RegExp(`already restored by batch ${restore.id} .*--force`));
    // With --force it runs again, and takes no chat from the agent it has now: every chat is skipped.
    env.api.reset();
    const again = await env.waitFor((await restoreBatch(env.ctx, parent.id, { actor: ALICE, force: true })).id, ['finished']);
    expect(again.counts).toMatchObject({ valid: original.size, succeeded: 0, skipped: original.size });
    expect(env.api.stats().assigned).toEqual({});
    for (const [key, agent] of original) expect(env.api.agentOf(key)).toBe(reassigned.get(key) ?? agent);
  });
});

describe('restore: CSV batches', () => {
  it('--capture-assignees reads each agent before the unassign; the restore gives them back', async () => {
    const numbers = phones(24, 500);
    const agentOfNumber = new Map(numbers.map((n, i) => [n, i % 6 === 5 ? null : AGENTS[i % 3]!]));
    env = await makeTestEnv({
      api: { agents: { ...Object.fromEntries([...agentOfNumber].map(([n, a]) => [keyOf(n), a])), 'g:grp_keep': AGENTS[0] } },
    });
    const file = env.csv('capture.csv', `phone,waba,groupId\n${numbers.map((n) => `+${n},${WABA},`).join('\n')}\n,,grp_keep\n`);
    env.worker();
    const parent = await env.waitFor((await env.ingestCsv(file, { batch: { kind: 'csv', source: 'capture.csv', captureAssignees: true } })).id, ['finished']);
    const original = new Map([...agentOfNumber].filter(([, a]) => a !== null).map(([n, a]) => [keyOf(n), a!]));
    const withoutAgent = [...agentOfNumber].filter(([, a]) => a === null).map(([n]) => keyOf(n));
    // Found without an agent: skipped, and no unassign call made for them. The group chat cannot be captured.
    expect(parent.counts).toMatchObject({ valid: 25, succeeded: original.size, skipped: withoutAgent.length + 1, failed: 0 });
    expect(parent.captureAssignees).toBe(true);
    expect(parent.restorable).toBe(original.size);
    const stats = env.api.stats();
    expect(stats.detailsRequests).toBe(24);
    expect(Object.keys(stats.unassigned).sort()).toEqual([...original.keys()].sort());
    const results = await resultsOf(env, parent.id);
    for (const key of withoutAgent) expect(results.get(key)).toEqual({ state: 'skipped', reason: 'already unassigned' });
    expect(results.get('g:grp_keep')).toEqual({ state: 'skipped', reason: GROUP_NOT_CAPTURED });
    expect(env.api.agentOf('g:grp_keep')).toBe(AGENTS[0]);
    // Two calls per unassigned chat (read, unassign), one per chat found without an agent.
    expect(parent.attempts).toBe(2 * original.size + withoutAgent.length);

    const reassigned = new Map([[[...original.keys()][1]!, NEWCOMER]]);
    for (const [key, agent] of reassigned) env.api.setAgent(key, agent);
    env.api.reset();
    await restoreAndCheck(env, parent, original, reassigned);
    for (const key of withoutAgent) expect(env.api.agentOf(key)).toBeNull();
  });

  it('a CSV with an agent column restores without capture', async () => {
    const numbers = phones(12, 900);
    const original = new Map(numbers.map((n, i) => [keyOf(n), AGENTS[i % 3]!]));
    env = await makeTestEnv({ api: { agents: Object.fromEntries(original) } });
    // Agent numbers written as people do: with +, spaces and dashes. One row's cell is not a number: not restorable.
    const rows = numbers.map(
      (n, i) => `${n},${WABA},${i === 11 ? 'Asha' : `+${AGENTS[i % 3]!.slice(0, 2)} ${AGENTS[i % 3]!.slice(2, 7)}-${AGENTS[i % 3]!.slice(7)}`}`,
    );
    const file = env.csv('agents.csv', `Customer Phone,WABA,Agent Phone\n${rows.join('\n')}\n`);
    env.worker();
    const parent = await env.waitFor((await env.ingestCsv(file)).id, ['finished']);
    expect(parent.counts).toMatchObject({ succeeded: 12 });
    expect(parent.restorable).toBe(11);
    const restorable = new Map([...original].slice(0, 11));
    env.api.reset();
    await restoreAndCheck(env, parent, restorable, new Map());
    expect(env.api.stats().detailsRequests).toBe(0);
    expect(env.api.agentOf(keyOf(numbers[11]!))).toBeNull(); // its agent was never known
  });

  it('a restore’s failures rerun as assigns, back to the same agents; a rerun of a restore cannot be restored', async () => {
    const numbers = phones(6, 1500);
    const original = new Map(numbers.map((n, i) => [keyOf(n), AGENTS[i % 3]!]));
    env = await makeTestEnv({ api: { agents: Object.fromEntries(original) }, config: { maxAttempts: 2 } });
    env.worker();
    const file = env.csv('rerun.csv', `phone,waba,agent\n${numbers.map((n, i) => `${n},${WABA},${AGENTS[i % 3]!}`).join('\n')}\n`);
    const parent = await env.waitFor((await env.ingestCsv(file)).id, ['finished']);
    env.api.setFaults({ flaky: { [numbers[0]!]: 100, [numbers[4]!]: 100 } }); // the API is down for two of them
    const restore = await env.waitFor((await restoreBatch(env.ctx, parent.id, { actor: ALICE })).id, ['finished']);
    expect(restore.counts).toMatchObject({ succeeded: 4, failed: 2 });
    expect([env.api.agentOf(keyOf(numbers[0]!)), env.api.agentOf(keyOf(numbers[4]!))]).toEqual([null, null]);
    env.api.setFaults({});
    env.api.reset();
    const rerun = await env.waitFor((await rerunBatch(env.ctx, restore.id, ALICE)).id, ['finished']);
    expect(rerun).toMatchObject({ kind: 'rerun', action: 'assign', counts: { valid: 2, succeeded: 2 } });
    expect(env.api.stats().unassigned).toEqual({});
    for (const [key, agent] of original) expect(env.api.agentOf(key)).toBe(agent);
    await expect(restoreBatch(env.ctx, rerun.id, { actor: ALICE })).rejects.toThrow(/is a restore .*refused/);
  });

  it('two restores at once: exactly one batch is made, the other is refused', async () => {
    const numbers = phones(8, 300);
    env = await makeTestEnv({ api: { agents: Object.fromEntries(numbers.map((n) => [keyOf(n), AGENTS[1]])) } });
    env.worker();
    const file = env.csv('both.csv', `phone,waba,assignedUserNumber\n${numbers.map((n) => `${n},${WABA},${AGENTS[1]}`).join('\n')}\n`);
    const parent = await env.waitFor((await env.ingestCsv(file)).id, ['finished']);
    const outcomes = await Promise.allSettled([restoreBatch(env.ctx, parent.id, { actor: ALICE }), restoreBatch(env.ctx, parent.id, { actor: ALICE })]);
    const made = outcomes.filter((o): o is PromiseFulfilledResult<BatchRecord> => o.status === 'fulfilled');
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect([made.length, refused.length]).toEqual([1, 1]);
    expect(refused[0]!.reason).toBeInstanceOf(BatchStateError);
    const restores = (await env.ctx.batches.list(100)).filter((b) => b.kind === 'restore');
    expect(restores.map((b) => b.id)).toEqual([made[0]!.value.id]);
    expect((await env.ctx.batches.require(parent.id)).children).toEqual([made[0]!.value.id]);
    await env.waitFor(made[0]!.value.id, ['finished']);
    expect(Object.values(env.api.stats().assigned)).toEqual(numbers.map(() => 1));
    expect((await env.ctx.audit.list({})).filter((a) => a.action === 'restore')).toHaveLength(1);
  });

  it('says why there is nothing to restore, and makes no batch', async () => {
    env = await makeTestEnv();
    env.worker();
    const plain = await env.waitFor((await env.ingestCsv(env.csv('plain.csv', `phone,waba\n${phones(3, 700).join(`,${WABA}\n`)},${WABA}\n`))).id, ['finished']);
    expect(plain.restorable).toBe(0);
    await expect(restoreBatch(env.ctx, plain.id, { actor: ALICE })).rejects.toThrow(NoValidRowsError);
    await expect(restoreBatch(env.ctx, plain.id, { actor: ALICE })).rejects.toThrow(
      /none of its 3 unassigned chat\(s\) has a known previous agent .*--capture-assignees/,
    );
    expect((await env.ctx.batches.require(plain.id)).children).toEqual([]);
    expect((await env.ctx.batches.list(100)).filter((b) => b.kind === 'restore')).toEqual([]);
  });
});

describe('restore: the console', () => {
  it('the upload form captures agents; the batch page offers Restore with the restorable count; a double click makes one batch', async () => {
    const numbers = phones(6, 1200);
    env = await makeTestEnv({ api: { agents: Object.fromEntries(numbers.map((n, i) => [keyOf(n), AGENTS[i % 3]!])) } });
    con = await startTestConsole(env);
    const uploaded = await con.upload(`phone,waba\n${numbers.map((n) => `${n},${WABA}`).join('\n')}\n`, 'console.csv', { captureAssignees: 'true' });
    expect(uploaded.status).toBe(201);
    const id = uploaded.body.id as string;
    const parent = await env.waitFor(id, ['finished']);
    expect(parent).toMatchObject({ captureAssignees: true, restorable: 6 });
    const view = await con.json<{ actions: string[]; restorable: number }>(`/api/batches/${id}`);
    expect(view.body.actions).toContain('restore');
    expect(view.body.restorable).toBe(6);

    const post = (): Promise<{ status: number; body: Record<string, unknown> }> =>
      con!.json(`/api/batches/${id}/restore`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const [a, b] = await Promise.all([post(), post()]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    const made = (a.status === 201 ? a : b).body;
    expect(made).toMatchObject({ kind: 'restore', parent: id, actions: expect.not.arrayContaining(['restore']) as unknown });
    expect((a.status === 409 ? a : b).body.message).toMatch(/restore in progress|already restored/);
    await env.waitFor(made.id as string, ['finished']);
    numbers.forEach((n, i) => expect(env!.api.agentOf(keyOf(n))).toBe(AGENTS[i % 3]));
    expect(
      await con.json(`/api/batches/${made.id as string}/restore`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"force":true}' }),
    ).toMatchObject({
      status: 409,
      body: { error: 'ERR_BATCH_STATE' },
    });
    expect(
      (await con.json(`/api/batches/${id}/restore`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"force":"yes"}' })).status,
    ).toBe(400);
  });
});

describe('restore: the CLI', () => {
  it('`run --capture-assignees` then `restore`: exit 0 and every agent back; again without --force: exit 2 saying what to do', async () => {
    const numbers = phones(5, 1800);
    const original = new Map(numbers.map((n, i) => [keyOf(n), AGENTS[i % 3]!]));
    env = await makeTestEnv({ api: { agents: Object.fromEntries(original) } });
    const help = spawnCli(env, ['--help']);
    expect((await help.exited).code).toBe(0);
    for (const word of ['restore <batchId>', '--capture-assignees', 'Doubles the API calls']) expect(help.output()).toContain(word);

    const run = spawnCli(env, ['run', env.csv('cli.csv', `phone\n${numbers.join('\n')}\n`), '--waba', WABA, '--capture-assignees', '--json', '-q']);
    expect((await run.exited).code).toBe(0);
    const parent = JSON.parse(run.output().slice(run.output().indexOf('{'))) as BatchRecord;
    expect(parent).toMatchObject({ captureAssignees: true, restorable: 5 });
    for (const key of original.keys()) expect(env.api.agentOf(key)).toBeNull();

    const restore = spawnCli(env, ['restore', parent.id, '-q']);
    expect((await restore.exited).code).toBe(0);
    expect(restore.output()).toContain(`restore of ${parent.id}: batch `);
    for (const [key, agent] of original) expect(env.api.agentOf(key)).toBe(agent);
    const again = spawnCli(env, ['restore', parent.id, '-q']);
    expect((await again.exited).code).toBe(2);
    expect(again.output()).toMatch(/already restored by batch .*restoring again needs --force/);
  });
});
