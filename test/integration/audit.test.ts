/**
 * The audit trail against real Redis and the stand-in API: the stream store (filters, order under concurrent
 * writes, retention trimming), and one entry with the right actor for every action taken through the library —
 * upload, dry run, pause/resume/cancel (a refused action and the losing one of two simultaneous pauses record
 * nothing), rerun, schedule set/run-now/remove, a scheduled tick — and a batch's summary naming its creator and
 * what was done to it. Then the adapters: the CLI's actor (BULK_UNASSIGN_ACTOR), `audit` and `console-user`,
 * and the console's named operators (log-in, failed log-ins kept bounded, actions under the operator's name,
 * revocation, /api/audit refusing hostile filters). Build first (CLI and console run from dist/).
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { cancelBatch, pauseBatch, resumeBatch } from '../../src/ops/batch-control.js';
import { rerunBatch } from '../../src/ops/rerun.js';
import { uploadCsv } from '../../src/app/upload.js';
import { completeDryRun } from '../../src/app/dry-run.js';
import { removeSchedule, runScheduleNow, scheduleStoreOf, setSchedule } from '../../src/app/schedules.js';
import { listAudit } from '../../src/app/audit.js';
import { runSchedule } from '../../src/schedule/run.js';
import { makeApiClient } from '../../src/execution/api-client.js';
import { makePacer } from '../../src/execution/pacer.js';
import { makeAuditStore } from '../../src/store/audit-store.js';
import { scheduleActor, type Actor } from '../../src/domain/actor.js';
import { Status } from '../../src/domain/lifecycle.js';
import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import { TEST_ACTOR } from '../helpers/actor.js';
import { spawnCli } from '../helpers/processes.js';
import { closeTestConsole, CONSOLE_TOKEN, startTestConsole, type TestConsole } from '../helpers/console.js';
import { eventually } from '../helpers/eventually.js';

const WABA = '919000000000';
const ALICE: Actor = { name: 'alice', via: 'console', from: '10.0.0.7' };
const BOB: Actor = { name: 'bob@ops-1', via: 'cli', from: 'ops-1' };

let env: TestEnv | undefined;
let con: TestConsole | undefined;
afterEach(async () => {
  await closeTestConsole(con, env);
  con = undefined;
  env = undefined;
});

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; out: string; output: string }> {
  const child = spawnCli(env!, args, extraEnv);
  const { code } = await child.exited;
  const output = child.output();
  return { code, out: output, output };
}

function csvOf(numbers: readonly string[], extra = ''): string {
  return `customerPhoneNumber,wabaNumber\n${numbers.map((p) => `+${p},${WABA}`).join('\n')}\n${extra}`;
}

describe('audit store', () => {
  it('keeps every one of many concurrent entries, in Redis order, and filters by batch, actor and time', async () => {
    env = await makeTestEnv();
    const { audit } = env.ctx;
    const recorded = await Promise.all(
      Array.from({ length: 50 }, (_, i) => audit.record({ actor: i % 2 ? ALICE : BOB, action: 'pause', batchId: `20261203-000000-00000${i % 3}` })),
    );
    expect(new Set(recorded.map((e) => e.id)).size).toBe(50);
    const all = await audit.list();
    expect(all).toHaveLength(50);
    const order = (id: string): [number, number] => id.split('-').map(Number) as [number, number];
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => order(a)[0] - order(b)[0] || order(a)[1] - order(b)[1]));
    expect(await audit.list({ actor: 'alice' })).toHaveLength(25);
    expect((await audit.list({ batchId: '20261203-000000-000000' })).every((e) => e.batchId === '20261203-000000-000000')).toBe(true);
    expect(await audit.list({ batchId: '20261203-000000-000000', actor: 'alice' })).toHaveLength(8);
    expect(await audit.list({ limit: 5 })).toEqual(all.slice(-5));
    expect(await audit.list({ since: Date.now() + 60_000 })).toEqual([]);
    expect(all[0]).toMatchObject({ actor: 'bob@ops-1', via: 'cli', from: 'ops-1', action: 'pause', details: {} });
  });

  it('trims entries older than the retention window as it appends (whole stream nodes at a time)', async () => {
    env = await makeTestEnv({ config: { auditRetentionDays: 1 } });
    // Entries from three days ago, as a stream that has been growing would hold them.
    const old = Date.now() - 3 * 86_400_000;
    for (let i = 0; i < 250; i += 1)
      await env.ctx.redis.xadd(env.ctx.keys.audit, `${old}-${i}`, 'actor', 'bob', 'via', 'cli', 'action', 'resume', 'details', '{}');
    expect(await env.ctx.redis.xlen(env.ctx.keys.audit)).toBe(250);
    const now = await env.ctx.audit.record({ actor: ALICE, action: 'cancel' });
    // Approximate trimming drops whole nodes (100 entries by default): at most one node of old entries is left.
    expect(await env.ctx.redis.xlen(env.ctx.keys.audit)).toBeLessThanOrEqual(101);
    expect((await env.ctx.audit.list()).at(-1)?.id).toBe(now.id);
    expect(await env.ctx.audit.list({ since: Date.now() - 86_400_000 })).toEqual([now]);
  });

  it('skips a damaged entry instead of failing the read', async () => {
    env = await makeTestEnv();
    await env.ctx.redis.xadd(env.ctx.keys.audit, '*', 'actor', 'x', 'via', 'martian', 'action', 'pause');
    await env.ctx.redis.xadd(env.ctx.keys.audit, '*', 'actor', 'x', 'via', 'cli', 'action', 'pause', 'details', '{not json');
    const entries = await makeAuditStore(env.ctx.redis, env.ctx.keys.audit, 365).list();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: 'x', details: {} });
  });
});

describe('every action records one entry with its actor', () => {
  it('upload and dry run: file, content hash, counts and options; the batch names its creator', async () => {
    env = await makeTestEnv();
    const file = env.csv('chats.csv', csvOf(phones(3), 'not-a-number,1\n'));
    const batch = await uploadCsv(env.ctx, { file, actor: ALICE, name: 'Q4', force: true });
    expect(batch.createdBy).toBe('alice');
    const dry = await uploadCsv(env.ctx, { file: env.csv('dry.csv', csvOf(phones(2, 10))), actor: BOB, dryRun: true });
    await completeDryRun(env.ctx, dry);
    const entries = await env.ctx.audit.list();
    expect(entries.map((e) => [e.action, e.actor, e.batchId])).toEqual([
      ['upload', 'alice', batch.id],
      ['dry-run', 'bob@ops-1', dry.id],
    ]);
    expect(entries[0]).toMatchObject({
      via: 'console',
      from: '10.0.0.7',
      details: { file: 'chats.csv', sha256: batch.sha256, rows: 4, valid: 3, rejected: 1, duplicates: 0, name: 'Q4', force: true },
    });
    expect(batch.sha256).toMatch(/^[0-9a-f]{64}$/);
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, dry.id, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ createdBy: 'bob@ops-1', actions: [{ actor: 'bob@ops-1', action: 'dry-run' }] });
  });

  it('pause, resume, cancel: one entry each; a refused action and the loser of two simultaneous pauses record nothing', async () => {
    env = await makeTestEnv();
    const batch = await uploadCsv(env.ctx, { file: env.csv('a.csv', csvOf(phones(40))), actor: TEST_ACTOR });
    const pauses = await Promise.allSettled([pauseBatch(env.ctx, batch.id, ALICE), pauseBatch(env.ctx, batch.id, BOB)]);
    expect(pauses.filter((p) => p.status === 'fulfilled')).toHaveLength(1);
    expect(pauses.filter((p) => p.status === 'rejected')).toHaveLength(1);
    await expect(pauseBatch(env.ctx, batch.id, ALICE)).rejects.toThrow(/cannot pause batch/);
    await resumeBatch(env.ctx, batch.id, BOB);
    await expect(resumeBatch(env.ctx, batch.id, BOB)).rejects.toThrow(/cannot resume batch/);
    const cancels = await Promise.allSettled([cancelBatch(env.ctx, batch.id, ALICE), cancelBatch(env.ctx, batch.id, ALICE)]);
    expect(cancels.filter((p) => p.status === 'fulfilled')).toHaveLength(1);
    const entries = await listAudit(env.ctx, { batch: batch.id });
    const winner = pauses[0]!.status === 'fulfilled' ? 'alice' : 'bob@ops-1';
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['upload', 'test-operator'],
      ['pause', winner],
      ['resume', 'bob@ops-1'],
      ['cancel', 'alice'],
    ]);
    expect(entries[1]!.details).toEqual({ from: Status.running });
  });

  it('rerun: recorded on the new batch and found under its parent; the parent report lists it, the child names its creator', async () => {
    const failing = phones(4, 100);
    env = await makeTestEnv({ api: { faults: { flaky: Object.fromEntries(failing.map((p) => [p, 100])) } }, config: { maxAttempts: 2 } });
    env.worker();
    const parent = await uploadCsv(env.ctx, { file: env.csv('p.csv', csvOf([...phones(3, 200), ...failing])), actor: BOB });
    await env.waitFor(parent.id, [Status.finished]);
    const child = await rerunBatch(env.ctx, parent.id, ALICE, { dryRun: true });
    expect(child.createdBy).toBe('alice');
    const rerun = (await listAudit(env.ctx, { batch: child.id })).find((e) => e.action === 'rerun');
    expect(rerun).toMatchObject({ actor: 'alice', batchId: child.id, details: { parent: parent.id, chats: 4, dryRun: true } });
    expect((await listAudit(env.ctx, { batch: parent.id })).map((e) => e.action)).toEqual(['upload', 'rerun']);
    const real = await rerunBatch(env.ctx, parent.id, BOB);
    await env.waitFor(real.id, [Status.finished]);
    const parentSummary = JSON.parse(readFileSync(join(env.config.reportsDir, parent.id, 'summary.json'), 'utf8'));
    expect(parentSummary.createdBy).toBe('bob@ops-1');
    expect(parentSummary.actions.map((a: { actor: string; action: string }) => `${a.action} ${a.actor}`)).toEqual([
      'upload bob@ops-1',
      'rerun alice',
      'rerun bob@ops-1',
    ]);
    const childMd = readFileSync(join(env.config.reportsDir, real.id, 'summary.md'), 'utf8');
    expect(childMd).toContain('**Created by:** bob@ops-1');
    expect(childMd).toMatch(/\| rerun \|/);
  });

  it('schedules: set, run-now, remove by the operator; a tick that started batches by the schedule, with the batch ids', async () => {
    env = await makeTestEnv();
    env.worker();
    const inbox = join(env.dir, 'inbox');
    mkdirSync(inbox);
    const schedules = scheduleStoreOf(env.ctx);
    const { definition } = await setSchedule(env.ctx, schedules, 'drop', { cron: '0 3 * * *', tz: 'UTC', inbox, waba: WABA }, { cwd: env.dir }, ALICE);
    writeFileSync(join(inbox, 'one.csv'), csvOf(phones(2, 300)));
    const now = await runScheduleNow(env.ctx, schedules, 'drop', { actor: BOB });
    expect(now.batches.map((b) => b.createdBy)).toEqual(['bob@ops-1']);

    // A tick as the worker's nightly job runs it (not manual): two files, two batches, one entry.
    writeFileSync(join(inbox, 'two.csv'), csvOf(phones(2, 400)));
    writeFileSync(join(inbox, 'three.csv'), csvOf(phones(2, 500)));
    const api = makeApiClient({ baseUrl: env.config.baseUrl, apiKey: env.config.apiKey!, requestTimeoutMs: 2000 });
    const pacer = makePacer(env.ctx.redis, env.ctx.keys, { max: 0, durationMs: 1000 });
    let tickBatches: string[];
    try {
      // The previous run's batch must be settled for the overlap rule.
      await env.waitFor(now.batches[0]!.id, [Status.finished]);
      const result = await runSchedule(
        { ...env.ctx, schedules, api, pace: () => pacer.acquire(), rateLimit: (ms) => pacer.pause(ms) },
        { definition, tick: Date.now(), owner: 'tick-test' },
      );
      if (result.kind !== 'done') throw new Error(`tick was busy: ${result.blockedBy}`);
      tickBatches = result.batches.map((b) => b.id);
      expect(result.batches.map((b) => b.createdBy)).toEqual(['schedule drop', 'schedule drop']);
    } finally {
      api.close();
    }
    await removeSchedule(env.ctx, schedules, 'drop', ALICE);
    await expect(removeSchedule(env.ctx, schedules, 'drop', ALICE)).rejects.toThrow(/no schedule named "drop"/);

    const entries = (await env.ctx.audit.list()).filter((e) => e.action.startsWith('schedule'));
    expect(entries.map((e) => [e.action, e.actor, e.via])).toEqual([
      ['schedule-set', 'alice', 'console'],
      ['schedule-run-now', 'bob@ops-1', 'cli'],
      ['schedule-tick', scheduleActor('drop').name, 'schedule'],
      ['schedule-remove', 'alice', 'console'],
    ]);
    expect(entries[0]!.details).toMatchObject({ schedule: 'drop', created: true, cron: '0 3 * * *', tz: 'UTC' });
    expect(entries[1]).toMatchObject({ batchId: now.batches[0]!.id, details: { schedule: 'drop', outcome: 'started' } });
    expect(entries[2]!.details).toMatchObject({ schedule: 'drop', batches: tickBatches.join(',') });
    // The tick is found under each batch it started.
    for (const id of tickBatches) expect((await listAudit(env.ctx, { batch: id })).map((e) => e.action)).toEqual(['schedule-tick']);
  });
});

describe('the CLI', () => {
  it('records under BULK_UNASSIGN_ACTOR; `audit` prints aligned text or JSON lines and refuses a bad --since', async () => {
    env = await makeTestEnv();
    const file = env.csv('cli.csv', csvOf(phones(5, 600)));
    const upload = await cli(['upload', file, '--json', '-q'], { BULK_UNASSIGN_ACTOR: 'carol' });
    expect(upload.code).toBe(0);
    const batchId = /"id": "([^"]+)"/.exec(upload.output)![1]!;
    expect((await cli(['pause', batchId], { BULK_UNASSIGN_ACTOR: 'carol' })).code).toBe(0);
    // Without BULK_UNASSIGN_ACTOR: the OS user at this host.
    expect((await cli(['resume', batchId])).code).toBe(0);
    const json = await cli(['audit', '--batch', batchId, '--json']);
    expect(json.code).toBe(0);
    const lines = json.output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => [e.action, e.actor, e.via])).toEqual([
      ['upload', 'carol', 'cli'],
      ['pause', 'carol', 'cli'],
      ['resume', expect.stringMatching(/^.+@.+$/), 'cli'],
    ]);
    expect(lines[0].details).toMatchObject({ file: 'cli.csv', rows: 5, valid: 5 });
    const text = await cli(['audit', '--actor', 'carol', '--since', '1h']);
    expect(text.code).toBe(0);
    const [header, ...rows] = text.output.trim().split('\n');
    expect(header).toMatch(/^TIME\s+ACTOR\s+VIA\s+ACTION\s+BATCH\s+DETAILS$/);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatch(new RegExp(`carol\\s+cli \\S+\\s+pause\\s+${batchId}\\s+from=running`));
    // Columns line up: every row's ACTION column starts where the header's does.
    expect(rows.every((r) => r.indexOf('pause') === header!.indexOf('ACTION') || r.indexOf('upload') === header!.indexOf('ACTION'))).toBe(true);
    const bad = await cli(['audit', '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('24h');
    expect(bad.output).toContain('2026-11-25');
  });

  it('console-user add prints a token once, stores only its hash in a 0600 file, refuses a duplicate and a bad name', async () => {
    env = await makeTestEnv();
    const usersFile = join(env.dir, 'console-users');
    const added = await cli(['console-user', 'add', 'alice', '--file', usersFile]);
    expect(added.code).toBe(0);
    const token = /token: (\S+)/.exec(added.output)![1]!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = readFileSync(usersFile, 'utf8');
    expect(stored).not.toContain(token);
    expect(stored).toMatch(/^alice:[0-9a-f]{64}\n$/);
    expect(statSync(usersFile).mode & 0o777).toBe(0o600);
    const again = await cli(['console-user', 'add', 'alice'], { CONSOLE_USERS_FILE: usersFile });
    expect(again.code).toBe(2);
    expect(again.output).toContain('already');
    const odd = await cli(['console-user', 'add', 'a b', '--file', usersFile]);
    expect(odd.code).toBe(2);
    expect(odd.output).toContain('letters, digits');
    expect((await cli(['console-user', 'add', 'console', '--file', usersFile])).code).toBe(2);
    expect(readFileSync(usersFile, 'utf8')).toBe(stored);
  });
});

describe('the console with named operators', () => {
  it('records log-ins and actions under the operator, keeps failed log-ins bounded, and stops a removed operator', async () => {
    env = await makeTestEnv();
    const usersFile = join(env.dir, 'console-users');
    const tokenOf = async (name: string): Promise<string> => /token: (\S+)/.exec((await cli(['console-user', 'add', name, '--file', usersFile])).output)![1]!;
    const alice = await tokenOf('alice');
    const dave = await tokenOf('dave.ops');
    con = await startTestConsole(env, { worker: false, extraEnv: { CONSOLE_USERS_FILE: usersFile } });
    const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

    // Log-in by the form, with and without the (optional) name.
    const form = (fields: Record<string, string>) => con!.request('/login', { auth: false, method: 'POST', body: new URLSearchParams(fields) });
    const login = await form({ name: 'alice', token: alice });
    expect(login.status).toBe(303);
    const cookie = /bu_console=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
    expect(cookie).not.toContain(alice);
    expect((await form({ token: dave })).status).toBe(303);
    expect((await form({ name: 'alice', token: dave })).status).toBe(401); // dave's token under alice's name

    // Actions: by cookie (alice), by Bearer (dave), by CONSOLE_TOKEN (operator `console`).
    const upload = new FormData();
    upload.append('file', new Blob([csvOf(phones(6, 700))], { type: 'text/csv' }), 'web.csv');
    const created = await con.request('/api/batches', { auth: false, method: 'POST', body: upload, headers: { cookie } });
    expect(created.status).toBe(201);
    const batch = (await created.json()) as { id: string; createdBy: string };
    expect(batch.createdBy).toBe('alice');
    expect((await con.request(`/api/batches/${batch.id}/pause`, { method: 'POST', ...as(dave) })).status).toBe(200);
    expect((await con.request(`/api/batches/${batch.id}/pause`, { method: 'POST', ...as(dave) })).status).toBe(409); // refused: not recorded
    expect((await con.request(`/api/batches/${batch.id}/resume`, { method: 'POST' })).status).toBe(200);
    const onBatch = await listAudit(env.ctx, { batch: batch.id });
    expect(onBatch.map((e) => [e.action, e.actor, e.via, e.from])).toEqual([
      ['upload', 'alice', 'console', '127.0.0.1'],
      ['pause', 'dave.ops', 'console', '127.0.0.1'],
      ['resume', 'console', 'console', '127.0.0.1'],
    ]);
    const logins = await env.ctx.audit.list({ actor: 'alice' });
    expect(logins[0]).toMatchObject({ action: 'console-login', details: { how: 'form' } });
    expect((await env.ctx.audit.list({ actor: 'dave.ops' }))[0]).toMatchObject({ action: 'console-login' });

    // A flood of wrong tokens: the throttle slows it down, and the trail gets only the first few.
    const wrong: string[] = [];
    for (let i = 0; i < 30; i += 1) {
      const guess = `wrong-${i}-${'x'.repeat(30)}`;
      wrong.push(guess);
      await form(i === 0 ? { name: 'alice', token: guess } : i === 1 ? { name: dave, token: guess } : { token: guess });
    }
    for (let i = 0; i < 10; i += 1) await con.request('/api/batches', { ...as(`bearer-guess-${i}-${'y'.repeat(30)}`) });
    const failed = await eventually(
      async () => {
        const entries = (await env!.ctx.audit.list()).filter((e) => e.action === 'console-login-failed');
        return entries.length >= 5 && entries;
      },
      { message: 'failed log-ins to be recorded' },
    );
    expect(failed.length).toBeLessThanOrEqual(10);
    expect(failed[0]).toMatchObject({ actor: 'unknown', from: '127.0.0.1', details: { how: 'form', tried: 'alice' } });
    // A token typed into the name field is not kept: only an operator's name is.
    expect(failed[1]!.details.tried).toBe('alice');
    expect(failed[2]!.details.tried).toBe('(not an operator)');
    const trail = JSON.stringify(await env.ctx.audit.list());
    const hashes = readFileSync(usersFile, 'utf8').match(/[0-9a-f]{64}/g)!;
    for (const secret of [alice, dave, CONSOLE_TOKEN, ...wrong, ...hashes]) expect(trail).not.toContain(secret);

    // /api/audit: newest first, filters checked; hostile values are a 400 that says why, never a 500.
    const page = await con.json<{ entries: { action: string }[] }>(`/api/audit?batch=${batch.id}`);
    expect(page.status).toBe(200);
    expect(page.body.entries.map((e) => e.action)).toEqual(['resume', 'pause', 'upload']);
    const hostile = [
      'batch=constructor',
      'batch=__proto__',
      'since=__proto__',
      'since=constructor',
      `actor=${'a'.repeat(10_000)}`,
      `since=${'9'.repeat(10_000)}`,
      'limit=1e999',
      'limit=-1',
      'actor=a&actor=b',
      'since=%00',
    ];
    for (const query of hostile) {
      const answer = await con.request(`/api/audit?${query}`);
      expect([query, answer.status]).toEqual([query, 400]);
      expect(((await answer.json()) as { message: string }).message).toBeTruthy();
    }
    // Parameters the route does not know are dropped (the parser drops `__proto__`, the schema the rest): no filter.
    for (const query of ['__proto__=1', 'constructor=1']) expect((await con.request(`/api/audit?${query}`)).status).toBe(200);
    for (const query of ['actor=constructor', 'actor=__proto__'])
      expect((await con.json<{ entries: unknown[] }>(`/api/audit?${query}`)).body.entries).toEqual([]);

    // Revoking: the line goes, and within a second neither the token nor the session works.
    expect((await cli(['console-user', 'remove', 'alice', '--file', usersFile])).code).toBe(0);
    // (429 rather than 401: this address sent many wrong tokens above, and alice's is one now.)
    await eventually(async () => [401, 429].includes((await con!.request('/api/batches', as(alice))).status), { message: 'alice to be refused' });
    expect((await con.request('/api/batches', { auth: false, headers: { cookie } })).status).toBe(401);
    expect((await con.request('/api/batches', as(dave))).status).toBe(200);
  });
});
