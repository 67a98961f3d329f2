/**
 * The console's HTTP API over real HTTP — a real Fastify server on loopback, the in-process worker,
 * real Redis and the stand-in DoubleTick server. Counts are checked against what the stand-in server saw.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';

import { makeTestEnv, phones, type TestEnv } from '../helpers/harness.js';
import {
  closeTestConsole,
  CONSOLE_TOKEN,
  FIXTURE,
  FIXTURE_FAULTS,
  fixturePhone,
  fixtureText,
  readEvents,
  startTestConsole,
  type TestConsole,
} from '../helpers/console.js';
import { killAllChildren, spawnCli } from '../helpers/processes.js';
import { eventually } from '../helpers/eventually.js';

const WABA = '919000000000';
type Json = Record<string, unknown>;
type Batch = Json & { id: string; status: string; done: number; counts: Record<string, number>; children: string[]; parent?: string; kind: string };

async function waitForStatus(con: TestConsole, id: string, statuses: readonly string[], timeoutMs = 30_000): Promise<Batch> {
  let last: Batch | undefined;
  return eventually(
    async () => {
      last = (await con.json<Batch>(`/api/batches/${id}`)).body;
      return statuses.includes(last.status) && last;
    },
    { timeoutMs, intervalMs: 100, message: () => `batch ${id} to be ${statuses.join(' or ')} (still ${last?.status}, done ${last?.done})` },
  );
}

describe('console API: access control', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv();
    con = await startTestConsole(env);
  });
  afterAll(() => closeTestConsole(con, env));

  it('answers 401 without the token on every route but /healthz and /login', async () => {
    for (const path of [
      '/api/batches',
      '/metrics',
      '/admin/queues',
      '/admin/queues/api/queues',
      '/assets/app.js',
      '/api/batches/20260101-000000-abcdef/events',
    ]) {
      const response = await con.request(path, { auth: false });
      expect({ path, status: response.status }).toEqual({ path, status: 401 });
    }
    const wrong = await con.request('/api/batches', { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'ERR_UNAUTHORIZED' });
    const upload = await con.request('/api/batches', { auth: false, method: 'POST', body: new FormData() });
    expect(upload.status).toBe(401);
    const page = await con.request('/', { auth: false, headers: { accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login');

    const health = await con.json('/healthz', { headers: { authorization: '' } });
    expect(health).toEqual({ status: 200, body: { ok: true, redis: 'ok', workers: 1 } });
  });

  it('logs a browser in with an HttpOnly SameSite=Strict cookie that does not contain the token', async () => {
    const form = (token: string): RequestInit & { auth: boolean } => ({ auth: false, method: 'POST', body: new URLSearchParams({ token }) });
    const bad = await con.request('/login', form('wrong-token-wrong-token'));
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    const good = await con.request('/login', form(CONSOLE_TOKEN));
    expect(good.status).toBe(303);
    const cookie = good.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^bu_console=[^;]+; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(CONSOLE_TOKEN);
    const session = cookie.split(';')[0] as string;
    const list = await con.request('/api/batches', { auth: false, headers: { cookie: session } });
    expect(list.status).toBe(200);
    // The page itself carries no secret.
    const html = await (await con.request('/', { auth: false, headers: { cookie: session } })).text();
    const js = await (await con.request('/assets/app.js', { auth: false, headers: { cookie: session } })).text();
    for (const text of [html, js]) {
      expect(text).not.toContain(CONSOLE_TOKEN);
      expect(text).not.toContain(env.config.apiKey as string);
    }
    // A cookie-authenticated change from another origin is refused.
    const cross = await con.request('/api/batches/20260101-000000-abcdef/pause', {
      auth: false,
      method: 'POST',
      headers: { cookie: session, origin: 'http://evil.example' },
    });
    expect(cross.status).toBe(403);
    // A forged or expired session is not a session.
    const forged = await con.request('/api/batches', { auth: false, headers: { cookie: `bu_console=${Date.now() + 60_000}.AAAA` } });
    expect(forged.status).toBe(401);
  });

  it('serves Bull Board behind the token, read-only', async () => {
    const board = await con.request('/admin/queues');
    expect(board.status).toBe(200);
    expect(await board.text()).toContain('<title>bulk-unassign</title>');
    const queues = await con.json<{ queues: { name: string; readOnlyMode: boolean }[] }>('/admin/queues/api/queues');
    expect(queues.body.queues.map((q) => [q.name, q.readOnlyMode])).toEqual([['unassign', true]]);
    const pause = await con.request('/admin/queues/api/queues/unassign/pause', { method: 'PUT' });
    expect(pause.status).toBe(405);
  });

  it('stops cleanly on SIGINT', async () => {
    expect(await con.close()).toBe(0);
    expect(con.process.output()).toContain('console stopped');
  });
});

describe('console API: upload, live progress, report, rerun, metrics', () => {
  let env: TestEnv;
  let con: TestConsole;
  let batchId = '';
  beforeAll(async () => {
    // 5 calls/s: the batch takes a few seconds, so the progress stream has something to stream.
    env = await makeTestEnv({ api: { faults: FIXTURE_FAULTS }, config: { maxAttempts: 2, rateLimitMax: 5, rateLimitDurationMs: 1000 } });
    con = await startTestConsole(env);
  });
  afterAll(() => closeTestConsole(con, env));

  it('uploads the fixture and streams its progress until it finishes', async () => {
    const { status, body } = await con.upload(fixtureText(), 'console.csv', { name: 'fixture <b>run</b>' });
    expect(status).toBe(201);
    const batch = body as Batch;
    batchId = batch.id;
    expect(batch).toMatchObject({ name: 'fixture <b>run</b>', source: 'console.csv', status: 'running', kind: 'csv' });
    expect(batch.counts).toMatchObject({ rows: FIXTURE.rows, valid: FIXTURE.valid, rejected: FIXTURE.rejected, duplicates: 0 });

    const stream = await con.request(`/api/batches/${batchId}/events`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const events = await readEvents(stream);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as Batch);
    expect(events.at(-1)).toEqual({ event: 'end', data: { id: batchId, status: 'finished' } });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect((progress[0] as Batch).done).toBeLessThan(FIXTURE.valid); // live, not only the final state
    const dones = progress.map((p) => p.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b)); // never goes backwards
    const last = progress.at(-1) as Batch;
    const stats = env.api.stats();
    const failed = FIXTURE.permanent + FIXTURE.transient;
    expect(last.status).toBe('finished');
    expect(last.counts).toMatchObject({ valid: 20, succeeded: 20 - failed, failed, cancelled: 0 });
    expect(Object.keys(stats.unassigned)).toHaveLength(20 - failed);
    expect(stats.byStatus['422']).toBe(FIXTURE.permanent);
    expect(stats.byStatus['503']).toBe(FIXTURE.transient * 2); // MAX_ATTEMPTS 2
  });

  it('lists the batch and serves its timeline', async () => {
    const list = await con.json<{ batches: Batch[] }>('/api/batches');
    expect(list.body.batches.map((b) => b.id)).toEqual([batchId]);
    const timeline = await con.json<{ bucketMs: number; points: { succeeded: number; failed: number; cancelled: number }[] }>(
      `/api/batches/${batchId}/timeline`,
    );
    const sum = (k: 'succeeded' | 'failed' | 'cancelled'): number => timeline.body.points.reduce((s, p) => s + p[k], 0);
    expect([sum('succeeded'), sum('failed'), sum('cancelled')]).toEqual([16, 4, 0]);
    expect(timeline.body.points.length).toBeLessThanOrEqual(120);
  });

  it('serves the report files for download, with the original columns', async () => {
    const failed = await con.request(`/api/batches/${batchId}/reports/failed.csv`);
    expect(failed.status).toBe(200);
    expect(failed.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(failed.headers.get('content-disposition')).toBe(`attachment; filename="${batchId}-failed.csv"`);
    const lines = (await failed.text()).trim().split('\r\n');
    expect(lines[0]).toBe('customerPhoneNumber,wabaNumber,note,status,error');
    expect(lines).toHaveLength(1 + 4);
    expect(lines[1]).toMatch(/^'\+91 98123 40003,919000000000,row 3,422,/);
    expect(lines[2]).toMatch(/^'\+91 98123 40005,919000000000,"<script>alert\(1\)<\/script>, quoted",503,/);
    expect(lines[3]).toMatch(/^'\+91 98123 40009,919000000000,<img src=x onerror=alert\(2\)>,422,/);
    expect(lines[4]).toMatch(/^'\+91 98123 40011,919000000000,row 11,503,/);
    const rejected = (await (await con.request(`/api/batches/${batchId}/reports/rejected.csv`)).text()).trim().split('\r\n');
    expect(rejected).toEqual(['line,column,value,reason,customerPhoneNumber,wabaNumber,note', expect.stringMatching(/^12,customerPhoneNumber,12ab,/)]);
    const summary = await con.json<Json>(`/api/batches/${batchId}/reports/summary.json`);
    expect(summary.body).toMatchObject({ batchId, counts: { succeeded: 16, failed: 4, rejected: 1 } });
    expect((await con.request(`/api/batches/${batchId}/reports/..%2F..%2Fetc%2Fpasswd`)).status).toBe(404);
    expect((await con.request(`/api/batches/../reports/failed.csv`)).status).toBe(404);
  });

  it('reruns the fixable failures as a linked batch', async () => {
    env.api.setFaults({}); // the outage is over: the rerun should succeed
    const rerun = await con.json<Batch>(`/api/batches/${batchId}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(rerun.status).toBe(201);
    expect(rerun.body).toMatchObject({ kind: 'rerun', parent: batchId, counts: { valid: FIXTURE.transient } });
    const child = await waitForStatus(con, rerun.body.id, ['finished']);
    expect(child.counts).toMatchObject({ succeeded: FIXTURE.transient, failed: 0 });
    expect(env.api.stats().unassigned[`p:${fixturePhone(5)}@${WABA}`]).toBe(1);
    const parent = await con.json<Batch>(`/api/batches/${batchId}`);
    expect(parent.body.children).toEqual([rerun.body.id]);
    // Rerunning a batch with nothing a rerun can fix is refused with the library's message.
    const again = await con.json<Json>(`/api/batches/${rerun.body.id}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(again).toMatchObject({ status: 422, body: { error: 'ERR_NO_VALID_ROWS', message: expect.stringContaining('nothing to rerun') } });
  });

  it('exports Prometheus metrics derived from the batch records', async () => {
    const response = await con.request('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const value = (line: string): number => Number(new RegExp(`^${line.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    const stats = env.api.stats();
    expect(value('bulk_unassign_chats_total{outcome="succeeded"}')).toBe(Object.keys(stats.unassigned).length);
    expect(value('bulk_unassign_chats_total{outcome="failed"}')).toBe(4);
    expect(value('bulk_unassign_api_latency_seconds_count')).toBe(16 + 4 + 2);
    expect(value('bulk_unassign_api_latency_seconds_bucket{le="+Inf"}')).toBe(16 + 4 + 2);
    expect(value('bulk_unassign_queue_jobs{state="waiting"}')).toBe(0);
    expect(value('bulk_unassign_workers')).toBe(1);
    expect(value('bulk_unassign_batches{status="finished"}')).toBe(2);
    // Counters only grow: a second scrape with nothing new reports the same totals.
    const again = await (await con.request('/metrics')).text();
    expect(/bulk_unassign_chats_total\{outcome="succeeded"\} (\d+)/.exec(again)?.[1]).toBe(String(value('bulk_unassign_chats_total{outcome="succeeded"}')));
  });
});

describe('console API: bad uploads', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv({ config: { maxFileMb: 1 } });
    con = await startTestConsole(env, { worker: false, extraEnv: { MAX_FILE_MB: '1' } });
  });
  afterAll(() => closeTestConsole(con, env));

  it('answers 400 with file, line and column for a broken CSV, and creates nothing', async () => {
    const text = `phone,waba\n${phones(5)
      .map((p) => `${p},${WABA}`)
      .join('\n')}\n"919812345678,${WABA}\n919812345679,${WABA}\n`;
    const { status, body } = await con.upload(text, 'broken.csv');
    expect(status).toBe(400);
    expect(body).toEqual({
      error: 'ERR_CSV_INVALID',
      file: 'broken.csv',
      line: 7,
      column: 1,
      message: expect.stringMatching(/^broken\.csv:7:1: a quoted cell is never closed/),
    });
    expect(JSON.stringify(body)).not.toContain('bulk-unassign-upload-'); // no temp path leaks
    expect((await con.json<{ batches: unknown[] }>('/api/batches')).body.batches).toEqual([]);
  });

  it('answers 400 for a header problem, 422 when no row is a chat, 413 over MAX_FILE_MB', async () => {
    const noHeader = await con.upload(`${phones(2).join('\n')}\n`, 'numbers.csv');
    expect(noHeader).toMatchObject({ status: 400, body: { error: 'ERR_CSV_INVALID', file: 'numbers.csv', line: 1 } });
    const allBad = await con.upload(`phone,waba\nabc,${WABA}\n12,${WABA}\n`, 'bad.csv');
    expect(allBad).toMatchObject({ status: 422, body: { error: 'ERR_NO_VALID_ROWS' } });
    const big = `phone,waba\n${`${phones(1)[0]},${WABA}\n`.repeat(Math.ceil((1.2 * 1024 * 1024) / 26))}`;
    const tooBig = await con.upload(big, 'big.csv');
    expect(tooBig).toMatchObject({ status: 413, body: { error: 'ERR_CSV_INVALID' } });
    const none = await con.json('/api/batches', {
      method: 'POST',
      body: (() => {
        const f = new FormData();
        f.append('name', 'x');
        return f;
      })(),
    });
    expect(none.status).toBe(400);
    expect((await con.json<{ batches: unknown[] }>('/api/batches')).body.batches).toEqual([]);
  });

  it('a dry run writes its report and enqueues nothing', async () => {
    const { status, body } = await con.upload(
      `phone,waba\n${phones(3)
        .map((p) => `${p},${WABA}`)
        .join('\n')}\n`,
      'dry.csv',
      { dryRun: 'true' },
    );
    expect(status).toBe(201);
    expect(body).toMatchObject({ status: 'dry-run', counts: { valid: 3 }, reportReady: true });
    expect(await env.ctx.queue.getJobCounts('wait', 'prioritized')).toEqual({ wait: 0, prioritized: 0 });
    const summary = await con.json<Json>(`/api/batches/${String(body.id)}/reports/summary.json`);
    expect(summary.body).toMatchObject({ dryRun: true });
  });

  it('/healthz says 503 when no worker is connected', async () => {
    expect(await con.json('/healthz')).toEqual({ status: 503, body: { ok: false, redis: 'ok', workers: 0 } });
  });
});

describe('console API: pause, resume, cancel', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv({ config: { rateLimitMax: 4, rateLimitDurationMs: 1000, workerConcurrency: 2 } });
    con = await startTestConsole(env);
  });
  afterAll(() => closeTestConsole(con, env));

  it('pauses, resumes and cancels a running batch; counts add up against the server log', async () => {
    const csv = `phone,waba\n${phones(40)
      .map((p) => `${p},${WABA}`)
      .join('\n')}\n`;
    const { body } = await con.upload(csv, 'slow.csv');
    const id = String(body.id);
    await eventually(async () => (await con.json<Batch>(`/api/batches/${id}`)).body.done >= 1, {
      timeoutMs: 20_000,
      intervalMs: 100,
      message: `batch ${id} to make progress`,
    });
    const paused = await con.json<Json & { batch: Batch; chats: number }>(`/api/batches/${id}/pause`, { method: 'POST' });
    expect(paused.status).toBe(200);
    expect(paused.body.batch.status).toBe('paused');
    expect(paused.body.batch.actions).toEqual(['resume', 'cancel']);
    const rerunEarly = await con.json<Json>(`/api/batches/${id}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(rerunEarly).toMatchObject({ status: 409, body: { error: 'ERR_BATCH_STATE' } });
    const pausedTwice = await con.json<Json>(`/api/batches/${id}/pause`, { method: 'POST' });
    expect(pausedTwice).toMatchObject({ status: 409, body: { error: 'ERR_BATCH_STATE' } });
    const resumed = await con.json<Json & { batch: Batch }>(`/api/batches/${id}/resume`, { method: 'POST' });
    expect(resumed.body.batch.status).toBe('running');
    const cancelled = await con.json<Json & { chats: number }>(`/api/batches/${id}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.chats).toBeGreaterThan(0);
    const done = await waitForStatus(con, id, ['cancelled']);
    const stats = env.api.stats();
    expect(done.counts.succeeded + done.counts.failed + done.counts.cancelled).toBe(40);
    // Chats fetched by the worker just as the batch was cancelled cancel themselves at their claim step: at least
    // the ones the call reported, never fewer.
    expect(done.counts.cancelled).toBeGreaterThanOrEqual(cancelled.body.chats);
    expect(done.counts.succeeded).toBe(Object.keys(stats.unassigned).length);
    expect(Object.values(stats.unassigned).every((n) => n === 1)).toBe(true);
    const missing = await con.json<Json>('/api/batches/20260101-000000-abcdef/cancel', { method: 'POST' });
    expect(missing.status).toBe(404);
  });
});

describe('bulk-unassign serve (subprocess)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await makeTestEnv();
  });
  afterEach(async () => {
    await killAllChildren();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('refuses to start without CONSOLE_TOKEN, and --demo off loopback', async () => {
    const noToken = spawnCli(env, ['serve', '--port', '0']);
    expect((await noToken.exited).code).toBe(2);
    expect(noToken.output()).toContain('CONSOLE_TOKEN (or CONSOLE_TOKEN_FILE) is not set');
    const shortToken = spawnCli(env, ['serve', '--port', '0'], { CONSOLE_TOKEN: 'short' });
    expect((await shortToken.exited).code).toBe(2);
    expect(shortToken.output()).toContain('at least 16 characters');
    const open = spawnCli(env, ['serve', '--demo', '--host', '0.0.0.0', '--port', '0']);
    expect((await open.exited).code).toBe(2);
    expect(open.output()).toContain('--demo only binds to a loopback address');
  });

  it('--demo makes a token, prints a URL that logs in, and stops cleanly on SIGINT', async () => {
    const serve = spawnCli(env, ['serve', '--demo', '--port', '0']);
    await serve.waitForOutput('/login?token=');
    const url = /open (http:\/\/127\.0\.0\.1:\d+)\/login\?token=(\S+)/.exec(serve.output());
    expect(url).not.toBeNull();
    const [, base, token] = url as RegExpExecArray;
    const login = await fetch(`${base}/login?token=${token}`, { redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
    expect((await fetch(`${base}/api/batches`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${base}/api/batches`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    serve.kill('SIGINT');
    expect(await serve.exited).toEqual({ code: 0, signal: null });
    expect(serve.output()).toContain('console stopped');
  });

  it('demo --console runs the demo, then serves its batch in the console until SIGINT', async () => {
    const demo = spawnCli(env, ['demo', '--console', '--port', '0']);
    await demo.waitForOutput('/login?token=', 45_000);
    expect(demo.output()).toContain('demo OK');
    const [, base, token] = /open (http:\/\/127\.0\.0\.1:\d+)\/login\?token=(\S+)/.exec(demo.output()) as RegExpExecArray;
    const list = (await (await fetch(`${base}/api/batches`, { headers: { authorization: `Bearer ${token}` } })).json()) as { batches: Batch[] };
    expect(list.batches.map((b) => [b.name, b.status, b.counts.valid])).toEqual([['demo', 'finished', 293]]);
    demo.kill('SIGINT');
    expect(await demo.exited).toEqual({ code: 0, signal: null });
  });
});
