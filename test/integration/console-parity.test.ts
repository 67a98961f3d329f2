/**
 * What an operator does with the CLI, done through the console's HTTP API (real HTTP, a real console process with
 * its worker, real Redis, the stand-in DoubleTick server): schedules created, previewed, run and removed with the
 * same checks and messages as `bulk-unassign schedule`; the failed chats of a batch paged and filtered, the
 * filter's count being the rerun's; the batch list filtered and paged; and bad input answered 4xx, never 5xx.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
import { closeTestConsole, CONSOLE_TOKEN, FIXTURE, FIXTURE_FAULTS, fixturePhone, fixtureText, startTestConsole, type TestConsole } from '../helpers/console.js';
import { spawnCli } from '../helpers/processes.js';
import { eventually } from '../helpers/eventually.js';
import { buildDefinition } from '../../src/schedule/definition.js';
import { scheduleStoreOf } from '../helpers/schedule.js';

type Json = Record<string, unknown>;
type Batch = Json & {
  id: string;
  status: string;
  kind: string;
  counts: Record<string, number>;
  parent?: string;
  children: string[];
  reasons: Record<string, number>;
};
type Run = { outcome: string; batchIds: string[]; manual: boolean; message: string };
type Schedule = Json & { name: string; cron: string; tz: string; nextRun: number | null; runs: Run[]; sources: string[]; input: Record<string, string> };
type FailureRow = { line: number; chat: string; failureClass: string; reason: string };
type FailurePage = { total: number; offset: number; limit: number; rows: FailureRow[]; rerun: { includePermanent: boolean; onlyReason?: string } | null };

const JSON_HEADERS = { 'content-type': 'application/json' };

async function waitForStatus(con: TestConsole, id: string, statuses: readonly string[]): Promise<Batch> {
  let last: Batch | undefined;
  return eventually(
    async () => {
      last = (await con.json<Batch>(`/api/batches/${id}`)).body;
      return statuses.includes(last.status) && last;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: () => `batch ${id} to be ${statuses.join(' or ')} (still ${last?.status})` },
  );
}

async function session(con: TestConsole): Promise<string> {
  const login = await con.request('/login', { auth: false, method: 'POST', body: new URLSearchParams({ token: CONSOLE_TOKEN }) });
  return (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
}

describe('console parity: schedules', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv({ api: { seedChats: 60 } });
    con = await startTestConsole(env);
  });
  afterAll(() => closeTestConsole(con, env));

  const put = (name: string, body: unknown): Promise<{ status: number; body: Json }> =>
    con.json(`/api/schedules/${name}`, { method: 'PUT', headers: JSON_HEADERS, body: JSON.stringify(body) });

  it('refuses a bad definition with the message `schedule set` gives, and saves nothing', async () => {
    const input = { cron: '0 2 * *', tz: 'UTC', tag: 'vip' };
    let expected = '';
    try {
      buildDefinition('vip', input, { cwd: env.dir, now: Date.now(), defaultTz: 'UTC' });
    } catch (error) {
      expected = (error as Error).message;
    }
    expect(expected).toContain('--cron');
    const answer = await put('vip', input);
    expect(answer).toEqual({ status: 400, body: { error: 'ERR_USAGE', message: expected } });

    // The CLI prints the same words for the same flags.
    const cli = spawnCli(env, ['schedule', 'set', 'vip', '--cron', '0 2 * *', '--tz', 'UTC', '--tag', 'vip']);
    expect((await cli.exited).code).not.toBe(0);
    expect(cli.output()).toContain(expected);

    for (const [body, words] of [
      [{ cron: '0 2 * * *', tz: 'Mars/Olympus', tag: 'vip' }, '--tz'],
      [{ cron: '0 2 * * *', tz: 'UTC' }, 'a schedule needs a source'],
      [{ cron: '0 2 * * *', tz: 'UTC', idleHours: '-3' }, '--idle-hours'],
      [{ cron: '0 2 * * *', tz: 'UTC', inbox: join(env.dir, 'no-such-folder') }, 'no such folder'],
      [{ cron: '99 2 * * *', tz: 'UTC', tag: 'vip' }, '--cron'],
    ] as const) {
      const refused = await put('vip', body);
      expect({ words, status: refused.status, error: refused.body.error }).toEqual({ words, status: 400, error: 'ERR_USAGE' });
      expect(refused.body.message).toContain(words);
    }
    expect((await con.json<{ schedules: Schedule[] }>('/api/schedules')).body.schedules).toEqual([]);
  });

  it('previews an unsaved definition: the chats the rule selects now, a masked sample, the inbox files; nothing is saved, sent or moved', async () => {
    const inbox = join(env.dir, 'inbox');
    mkdirSync(inbox);
    writeFileSync(join(inbox, 'a.csv'), 'customerPhoneNumber,wabaNumber\n919812300001,919000000000\n');
    writeFileSync(join(inbox, 'b.csv'), 'not,a,chat\n1,2,3\n');
    const vip = env.api.chats().filter((c) => c.tagNames.includes('vip') && c.assignedUserNumber !== null);
    expect(vip.length).toBeGreaterThan(0);
    const preview = await con.json<
      Json & { batches: { counts: Record<string, number>; wouldSend: { chat: string }[] }[]; inboxFiles: { file: string; error?: string }[]; message: string }
    >('/api/schedules/preview', {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ name: 'vip', cron: '0 2 * * *', tz: 'UTC', tag: 'vip', inbox }),
    });
    expect(preview.status).toBe(200);
    const [query] = preview.body.batches;
    expect(query?.counts.valid).toBe(vip.length);
    expect(query?.wouldSend.length).toBe(Math.min(5, vip.length));
    for (const s of query?.wouldSend ?? []) expect(s.chat).toMatch(/^p:\d{4}\*+\d{2}@\d+$|^g:/);
    expect(preview.body.inboxFiles.map((f) => f.file).sort()).toEqual([join(inbox, 'a.csv'), join(inbox, 'b.csv')]);
    expect(preview.body.inboxFiles.filter((f) => f.error)).toHaveLength(1);
    expect(readdirSync(inbox).sort()).toEqual(['a.csv', 'b.csv']);
    expect(Object.keys(env.api.stats().unassigned)).toHaveLength(0);
    expect((await con.json('/api/schedules/vip')).status).toBe(404);
  });

  it('creates, shows (as `schedule show --json` does), edits, runs now and removes a schedule', async () => {
    const created = await put('vip', { cron: '0 2 * * *', tz: 'Asia/Kolkata', tag: 'vip', overlap: 'skip', chatStatus: '', agent: '' });
    expect(created.status).toBe(201);
    expect(created.body.created).toBe(true);
    const stored = await scheduleStoreOf(env.ctx).get('vip');
    expect(stored).toMatchObject({ name: 'vip', cron: '0 2 * * *', tz: 'Asia/Kolkata', overlap: 'skip', query: { tags: ['vip'] } });

    const cliShow = spawnCli(env, ['schedule', 'show', 'vip', '--json']);
    expect((await cliShow.exited).code).toBe(0);
    const shownByCli = JSON.parse(cliShow.output()) as Json;
    const shown = (await con.json<Schedule>('/api/schedules/vip')).body;
    expect(shown).toMatchObject(shownByCli);
    expect(shown.nextRun).toEqual(expect.any(Number));
    expect(shown.input).toMatchObject({ cron: '0 2 * * *', tz: 'Asia/Kolkata', tag: 'vip', chatStatus: '' });

    const edited = await put('vip', { ...shown.input, cron: '30 3 * * *' });
    expect(edited.status).toBe(200);
    expect(edited.body.created).toBe(false);
    expect((await scheduleStoreOf(env.ctx).get('vip'))?.cron).toBe('30 3 * * *');
    // The capture option goes through the form and back, so an edit keeps it; a value that is not a flag is refused.
    expect((await put('vip', { ...shown.input, cron: '30 3 * * *', captureAssignees: 'true' })).status).toBe(200);
    expect((await scheduleStoreOf(env.ctx).get('vip'))?.captureAssignees).toBe(true);
    const withCapture = (await con.json<Schedule>('/api/schedules/vip')).body;
    expect(withCapture.input.captureAssignees).toBe('true');
    expect((await put('vip', withCapture.input)).status).toBe(200);
    expect((await scheduleStoreOf(env.ctx).get('vip'))?.captureAssignees).toBe(true);
    expect((await put('vip', { ...withCapture.input, captureAssignees: 'constructor' })).status).toBe(400);
    expect((await put('vip', { ...withCapture.input, captureAssignees: '' })).status).toBe(200);
    expect((await scheduleStoreOf(env.ctx).get('vip'))?.captureAssignees).toBeUndefined();

    const expected = env.api.chats().filter((c) => c.tagNames.includes('vip') && c.assignedUserNumber !== null).length;
    const run = await con.json<{ run: Run; skipped: boolean; batches: Batch[] }>('/api/schedules/vip/run', {
      method: 'POST',
      headers: JSON_HEADERS,
      body: '{}',
    });
    expect(run.status).toBe(201);
    expect(run.body.run).toMatchObject({ outcome: 'started', manual: true });
    expect(run.body.batches).toHaveLength(1);
    const batch = await waitForStatus(con, (run.body.batches[0] as Batch).id, ['finished']);
    expect(batch).toMatchObject({ kind: 'nightly', counts: { succeeded: expected } });
    const runs = (await con.json<Schedule>('/api/schedules/vip')).body.runs;
    expect(runs[0]).toMatchObject({ outcome: 'started', batchIds: [batch.id], manual: true });

    const removed = await con.json('/api/schedules/vip', { method: 'DELETE' });
    expect(removed).toEqual({ status: 200, body: { removed: 'vip' } });
    expect((await con.json('/api/schedules/vip', { method: 'DELETE' })).status).toBe(404);
    expect(await scheduleStoreOf(env.ctx).get('vip')).toBeUndefined();
    // Its batch stays.
    expect((await con.json(`/api/batches/${batch.id}`)).status).toBe(200);
  });

  it('answers bad input with 4xx, and refuses a cookie-authenticated change from another origin', async () => {
    const answers: string[] = [];
    const check = async (method: string, path: string, body?: string): Promise<void> => {
      const response = await con.request(path, { method, ...(body === undefined ? {} : { headers: JSON_HEADERS, body }) });
      await response.arrayBuffer();
      answers.push(`${method} ${path.slice(0, 60)} ${body?.slice(0, 40) ?? ''} → ${response.status >= 400 && response.status < 500 ? '4xx' : response.status}`);
    };
    for (const name of ['__proto__', 'constructor', 'toString', '-x', 'a'.repeat(41), '%00', '..%2F..', 'a%20b']) {
      await check('GET', `/api/schedules/${name}`);
      await check('DELETE', `/api/schedules/${name}`);
      await check('POST', `/api/schedules/${name}/run`, '{}');
      // No source: refused whether or not the name is one (constructor and toString are fine schedule names).
      await check('PUT', `/api/schedules/${name}`, '{"cron":"0 2 * * *","tz":"UTC"}');
    }
    for (const body of ['[]', '"x"', '{"cron":5}', '{"cron":"x","__proto__":{"tag":"x"}}', `{"cron":"${'9'.repeat(400)}"}`]) {
      await check('PUT', '/api/schedules/ok', body);
    }
    for (const body of ['{}', '{"name":5}', '{"name":"__proto__","cron":"0 2 * * *","tag":"x"}', 'null']) await check('POST', '/api/schedules/preview', body);
    await check('POST', '/api/schedules/ok/run', '{"dryRun":"yes"}');
    expect(answers.filter((a) => !a.endsWith('→ 4xx'))).toEqual([]);
    expect((await con.json<{ schedules: Schedule[] }>('/api/schedules')).body.schedules).toEqual([]);

    const cookie = await session(con);
    const cross = await con.request('/api/schedules/ok', {
      auth: false,
      method: 'PUT',
      headers: { cookie, origin: 'http://evil.example', ...JSON_HEADERS },
      body: '{"cron":"0 2 * * *","tz":"UTC","tag":"x"}',
    });
    expect(cross.status).toBe(403);
    const noToken = await con.request('/api/schedules', { auth: false });
    expect(noToken.status).toBe(401);
  });
});

describe('console parity: failed chats and the batch list', () => {
  let env: TestEnv;
  let con: TestConsole;
  let parent: Batch;
  beforeAll(async () => {
    env = await makeTestEnv({ api: { faults: FIXTURE_FAULTS }, config: { maxAttempts: 2, rateLimitMax: 50, rateLimitDurationMs: 1000 } });
    con = await startTestConsole(env);
    const uploaded = await con.upload(fixtureText(), 'console.csv', { name: 'fixture' });
    expect(uploaded.status).toBe(201);
    parent = await waitForStatus(con, uploaded.body.id as string, ['finished']);
  });
  afterAll(() => closeTestConsole(con, env));

  const failures = async (query: string): Promise<FailurePage> => {
    const answer = await con.json<FailurePage>(`/api/batches/${parent.id}/failures?${query}`);
    expect(answer.status).toBe(200);
    return answer.body;
  };

  it('pages the failed chats in file order, masked, with counts per filter that match the rerun', async () => {
    const all = await failures('limit=50');
    expect(all.total).toBe(FIXTURE.permanent + FIXTURE.transient);
    expect(all.rows.map((r) => r.line)).toEqual([...all.rows.map((r) => r.line)].sort((a, b) => a - b));
    for (const row of all.rows) for (const i of [3, 5, 9, 11]) expect(row.chat).not.toContain(fixturePhone(i));
    expect(all.rows.every((r) => /^p:\d{4}\*+\d{2}@\d+$/.test(r.chat))).toBe(true);
    expect(all.rerun).toEqual({ includePermanent: true });

    const pages = [];
    for (let offset = 0; offset < all.total; offset += 1) pages.push(...(await failures(`limit=1&offset=${offset}`)).rows);
    expect(pages).toEqual(all.rows);
    expect((await failures(`offset=${all.total}`)).rows).toEqual([]);

    const transient = await failures('class=transient');
    const permanent = await failures('class=permanent');
    expect([transient.total, permanent.total]).toEqual([FIXTURE.transient, FIXTURE.permanent]);
    expect(transient.rows.every((r) => r.failureClass === 'transient')).toBe(true);
    expect(permanent.rerun).toBeNull();
    const reason = Object.keys(parent.reasons).find((r) => r.includes('422')) as string;
    const byReason = await failures(`reason=${encodeURIComponent('422')}`);
    expect(byReason.total).toBe(parent.reasons[reason]);
    expect(byReason.rerun).toEqual({ includePermanent: true, onlyReason: '422' });

    // One row in full, on request; a row that moved is not revealed.
    const first = all.rows[0] as FailureRow;
    const revealed = await con.json<FailureRow & { cells: Record<string, string> }>(`/api/batches/${parent.id}/failures/reveal?offset=0&line=${first.line}`);
    expect(revealed.status).toBe(200);
    expect(revealed.body.chat).toBe(`p:${fixturePhone(3)}@919000000000`);
    expect((await con.request(`/api/batches/${parent.id}/failures/reveal?offset=0&line=${first.line + 1}`)).status).toBe(409);

    // "Rerun these N": the filter's rerun options make a child of exactly N chats.
    env.api.setFaults({});
    const rerun = await con.json<Batch>(`/api/batches/${parent.id}/rerun`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(transient.rerun) });
    expect(rerun.status).toBe(201);
    const child = await waitForStatus(con, rerun.body.id, ['finished']);
    expect(child.counts.valid).toBe(transient.total);
  });

  it('filters the batch list by status, kind and name, pages it, and links reruns', async () => {
    const dry = await con.upload(fixtureText(), 'other.csv', { name: 'a dry one', dryRun: 'true', force: 'true' });
    expect(dry.status).toBe(201);
    type Page = { batches: Batch[]; total: number; offset: number; limit: number; filters: { statuses: string[]; kinds: string[] } };
    const list = async (query: string): Promise<Page> => {
      const answer = await con.json<Page>(`/api/batches?${query}`);
      expect(answer.status).toBe(200);
      return answer.body;
    };
    const everything = await list('');
    expect(everything.total).toBe(3);
    expect(everything.filters.kinds).toEqual(expect.arrayContaining(['csv', 'nightly', 'rerun']));
    expect(everything.filters.statuses).toEqual(expect.arrayContaining(['running', 'finished', 'dry-run']));
    const reruns = await list('kind=rerun');
    expect(reruns.batches.map((b) => [b.kind, b.parent])).toEqual([['rerun', parent.id]]);
    expect((await list('kind=csv')).total).toBe(2);
    expect((await list('status=dry-run')).batches.map((b) => b.name)).toEqual(['a dry one']);
    expect((await list('status=finished&kind=csv')).batches.map((b) => b.id)).toEqual([parent.id]);
    // Case-insensitive text in the name (the rerun is named after its parent) or the id.
    expect((await list('name=FIXT')).batches.map((b) => b.id).sort()).toEqual([parent.id, reruns.batches[0]?.id].sort());
    expect((await list('name=DRY%20ONE')).batches.map((b) => b.name)).toEqual(['a dry one']);
    expect((await list(`name=${parent.id}`)).batches.map((b) => b.id)).toEqual([parent.id]);
    expect((await list('kind=nightly')).total).toBe(0);
    const [second] = (await list('limit=1&offset=1')).batches;
    expect(second?.id).toBe(everything.batches[1]?.id);
    expect((await list('limit=2&offset=2')).batches.map((b) => b.id)).toEqual([everything.batches[2]?.id]);
    const parentNow = everything.batches.find((b) => b.id === parent.id);
    expect(parentNow?.children).toEqual([reruns.batches[0]?.id]);
  });

  it('answers bad input on the new routes with 4xx', async () => {
    const paths = [
      ...['limit=0', 'limit=501', 'limit=1e999', 'offset=-1', 'offset=1e999', 'offset=x', 'class=bogus', 'class=constructor', `reason=${'r'.repeat(301)}`].map(
        (q) => `/api/batches/${parent.id}/failures?${q}`,
      ),
      `/api/batches/${parent.id}/failures/reveal`,
      `/api/batches/${parent.id}/failures/reveal?line=-1`,
      `/api/batches/${parent.id}/failures/reveal?line=1e999`,
      `/api/batches/${parent.id}/failures/reveal?line=1&offset=99999`,
      '/api/batches/20260101-000000-abcdef/failures',
      '/api/batches/__proto__/failures',
      '/api/batches/constructor/failures/reveal?line=1',
      ...['status=bogus', 'status=constructor', 'kind=bogus', 'kind=__proto__', 'offset=-1', 'offset=1e999', `name=${'n'.repeat(201)}`].map(
        (q) => `/api/batches?${q}`,
      ),
    ];
    const wrong: string[] = [];
    for (const path of paths) {
      const response = await con.request(path);
      await response.arrayBuffer();
      if (response.status < 400 || response.status >= 500) wrong.push(`${path.slice(0, 90)} → ${response.status}`);
    }
    expect(wrong).toEqual([]);
  });

  it('reruns with a name and as a dry run, as `rerun --name --dry-run` does; refuses a name past the upload bound', async () => {
    const rerun = (body: Json): Promise<{ status: number; body: Batch }> =>
      con.json<Batch>(`/api/batches/${parent.id}/rerun`, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) });
    const childrenBefore = (await con.json<Batch>(`/api/batches/${parent.id}`)).body.children;

    // The upload form's bound (200): over it is a 400 and no batch, never a silent cut.
    for (const body of [{ name: 'n'.repeat(201), dryRun: true }, { name: 'n'.repeat(201) }, { dryRun: 'yes' }]) expect((await rerun(body)).status).toBe(400);
    expect((await con.json<Batch>(`/api/batches/${parent.id}`)).body.children).toEqual(childrenBefore);

    const dry = await rerun({ includePermanent: true, name: '  checked first  ', dryRun: true });
    expect(dry.status).toBe(201);
    expect(dry.body).toMatchObject({ status: 'dry-run', kind: 'rerun', parent: parent.id, name: 'checked first', reportReady: true, done: 0 });
    expect(dry.body.counts.valid).toBe(FIXTURE.permanent + FIXTURE.transient);
    // Its report is there at once, as for an uploaded dry run.
    const summary = await con.json<Json>(`/api/batches/${dry.body.id}/reports/summary.json`);
    expect(summary.status).toBe(200);
    expect(summary.body).toMatchObject({ dryRun: true });

    // A blank name keeps the default; a dry run takes no rerun slot, so a second one is made.
    const unnamed = await rerun({ name: '   ', dryRun: true });
    expect(unnamed.status).toBe(201);
    expect(unnamed.body).toMatchObject({ status: 'dry-run', name: `${parent.name as string} (rerun)`, counts: { valid: FIXTURE.transient } });

    // The CLI, same options: the same selection.
    const cli = spawnCli(env, ['rerun', parent.id, '--include-permanent', '--dry-run', '--name', 'by cli', '--json']);
    expect((await cli.exited).code).toBe(0);
    // output() is stdout then stderr: the --json document is the first lines from "{" to the closing "}".
    const lines = cli.output().split('\n');
    const start = lines.indexOf('{');
    const byCli = JSON.parse(lines.slice(start, lines.indexOf('}', start) + 1).join('\n')) as { batchId: string; counts: Record<string, number> };
    expect(byCli.counts).toEqual(dry.body.counts);
    expect((await con.json<Batch>(`/api/batches/${byCli.batchId}`)).body).toMatchObject({ name: 'by cli', status: 'dry-run' });
  });
  it('uploads with a default country for numbers without one, as `upload --default-country` does; refuses one that is not a country', async () => {
    // The fixture's first three numbers without their 91: only a default country makes them chats.
    const local = ['customerPhoneNumber,wabaNumber', ...[1, 2, 3].map((i) => `${fixturePhone(i).slice(2)},919000000000`)].join('\n');
    const bad = await con.upload(local, 'local.csv', { defaultCountry: 'XX', dryRun: 'true' });
    expect(bad).toMatchObject({ status: 400, body: { message: 'Expected the default country to be an ISO country code like IN, got "XX"' } });

    const without = await con.upload(local, 'local.csv', { dryRun: 'true', force: 'true' });
    expect(without).toMatchObject({ status: 422, body: { error: 'ERR_NO_VALID_ROWS' } });
    const withIn = await con.upload(local, 'local.csv', { defaultCountry: ' in ', dryRun: 'true', force: 'true' });
    expect(withIn.status).toBe(201);
    expect(withIn.body).toMatchObject({ counts: { valid: 3, rejected: 0 } });

    // The CLI, same file and country: the same counts.
    const cli = spawnCli(env, ['upload', env.csv('local.csv', local), '--default-country', 'IN', '--dry-run', '--force', '--json']);
    expect((await cli.exited).code).toBe(0);
    expect(cli.output()).toContain('"valid": 3');
  });
});
