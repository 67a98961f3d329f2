/**
 * Security review of the console, over real HTTP against `bulk-unassign serve` (a subprocess, as in
 * console-api.test.ts): hostile URLs and bodies never crash it or earn a 500; the progress stream checks batch ids
 * and is capped; wrong tokens are slowed down without ever refusing the right one; the session cookie is Secure
 * behind a TLS proxy; Bull Board is served under a same-origin Content-Security-Policy.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { eventually } from '../helpers/eventually.js';
import { makeTestEnv, type TestEnv } from '../helpers/harness.js';
import { closeTestConsole, CONSOLE_TOKEN, fixtureText, startTestConsole, type TestConsole } from '../helpers/console.js';

type Json = Record<string, unknown>;

interface Answer {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly error?: string;
}

/** Runs `tasks` with at most `width` in flight. */
async function inBatches<T>(tasks: readonly (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < tasks.length; i += width) results.push(...(await Promise.all(tasks.slice(i, i + width).map((task) => task()))));
  return results;
}

/** Names that are properties of every plain object: an object indexed by them answers with Object's own members. */
const PROTOTYPE_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'prototype'];

describe('route fuzz: prototype names, odd ids and odd queries', () => {
  let env: TestEnv;
  let con: TestConsole;
  let dryRunId = '';
  beforeAll(async () => {
    env = await makeTestEnv();
    con = await startTestConsole(env);
    // A dry run is final at once, with its report ready: every report route has a real batch behind it.
    const upload = await con.upload(fixtureText(), 'console.csv', { dryRun: 'true' });
    expect(upload.status).toBe(201);
    dryRunId = upload.body.id as string;
  });
  afterAll(() => closeTestConsole(con, env));

  it('GET /api/batches/:id/reports/constructor (and other Object members) is a 404, and serve stays up', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const response = await con.request(`/api/batches/${dryRunId}/reports/${name}`);
      expect({ name, status: response.status, body: await response.json() }).toEqual({
        name,
        status: 404,
        body: { error: 'ERR_NOT_FOUND', message: 'no such report file' },
      });
    }
    const summary = await con.json(`/api/batches/${dryRunId}/reports/summary.json`);
    expect(summary).toMatchObject({ status: 200, body: { batchId: dryRunId } });
    expect(con.process.running()).toBe(true);
  });

  it('answers many hostile requests over every route without a 500, and is still up afterwards', async () => {
    const oddIds = [
      ...PROTOTYPE_NAMES,
      '..%2F..',
      '..%2F..%2F..%2Fetc%2Fpasswd',
      '%2e%2e',
      '%00',
      `${dryRunId}%00`,
      'x'.repeat(100), // Fastify's longest route parameter: longer ones are answered 414 before any route runs
      'x'.repeat(5000),
      'ünïcødé-✓-😀',
      '%F0%9F%98%80',
      '%E0%A4%A',
      '%',
      '%zz',
      'a:b',
      ':id',
      '%3Aid',
      `${dryRunId}:chats`,
      `${dryRunId}:order`,
      `${dryRunId}:rejected`,
      `${dryRunId}%3Aorder`,
      `${dryRunId.toUpperCase()}`,
      '20260101-000000-abcdef',
      dryRunId,
    ];
    const oddFiles = [
      ...PROTOTYPE_NAMES,
      'summary.json',
      'summary.json%00',
      '..%2F..%2F..%2Fpackage.json',
      '%00',
      'x'.repeat(5000),
      '%E0%A4%A',
      'a:b',
      'failed.csv:x',
    ];
    const oddQueries = [
      'limit=constructor',
      'limit=1e999',
      'limit=-1',
      'limit=0',
      'limit=1.5',
      'limit=0x10',
      `limit=${'9'.repeat(400)}`,
      'limit=1&limit=2',
      'limit[]=1',
      'limit=',
      'limit=%00',
      'limit=%E0%A4%A',
      '__proto__=1',
      'constructor[prototype][polluted]=1',
      '__proto__[polluted]=1',
    ];
    const tasks: (() => Promise<Answer>)[] = [];
    const call =
      (method: string, path: string, init: RequestInit & { auth?: boolean } = {}): (() => Promise<Answer>) =>
      async () => {
        try {
          const response = await con.request(path, { ...init, method, signal: AbortSignal.timeout(15_000) });
          await response.arrayBuffer(); // every stream here ends (the only batch is final)
          return { method, path, status: response.status };
        } catch (error) {
          return { method, path, status: 0, error: String(error) };
        }
      };

    for (const id of oddIds) {
      for (const suffix of ['', '/timeline', '/events']) tasks.push(call('GET', `/api/batches/${id}${suffix}`));
      for (const file of oddFiles) tasks.push(call('GET', `/api/batches/${id}/reports/${file}`));
      for (const action of ['pause', 'resume', 'cancel']) tasks.push(call('POST', `/api/batches/${id}/${action}`));
      tasks.push(
        call('POST', `/api/batches/${id}/rerun`, { headers: { 'content-type': 'application/json' }, body: '{"__proto__":{"includePermanent":true}}' }),
      );
      tasks.push(call('POST', `/api/batches/${id}/rerun`, { headers: { 'content-type': 'application/json' }, body: '{"constructor":{"prototype":{"x":1}}}' }));
      tasks.push(call('POST', `/api/batches/${id}/rerun`, { headers: { 'content-type': 'application/json' }, body: '"constructor"' }));
      tasks.push(call('GET', `/assets/${id}`));
      tasks.push(call('GET', `/${id}`));
      tasks.push(call('GET', `/admin/queues/${id}`));
      tasks.push(call('GET', `/admin/queues/queue/${id}`));
      tasks.push(call('GET', `/admin/queues/api/queues/${id}/${id}`));
      tasks.push(call('GET', `/admin/queues/static/${id}`));
    }
    for (const query of oddQueries) {
      tasks.push(call('GET', `/api/batches?${query}`));
      tasks.push(call('GET', `/api/batches/${dryRunId}?${query}`));
      tasks.push(call('GET', `/api/batches/${dryRunId}/events?${query}`));
      tasks.push(call('GET', `/admin/queues/api/queues?${query}`));
      tasks.push(call('GET', `/metrics?${query}`));
      tasks.push(call('GET', `/healthz?${query}`, { auth: false }));
      tasks.push(call('GET', `/login?${query.replaceAll('limit', 'token')}`, { auth: false }));
    }
    const form = (contentType: string, body: string): RequestInit => ({ headers: { 'content-type': contentType }, body });
    for (const body of ['token=constructor', '__proto__=x', 'token[]=x', 'token=%E0%A4%A', `token=${'t'.repeat(3000)}`]) {
      tasks.push(call('POST', '/login', { auth: false, ...form('application/x-www-form-urlencoded', body) }));
    }
    for (const body of ['{"token":["x"]}', '{"__proto__":{"token":"x"}}', '{"constructor":{"prototype":{"token":"x"}}}', '[1]', 'null']) {
      tasks.push(call('POST', '/login', { auth: false, ...form('application/json', body) }));
    }
    tasks.push(call('POST', '/login', { auth: false, ...form('text/plain', 'token=x') }));
    // Uploads the multipart parser cannot read, and field names that are Object members.
    tasks.push(call('POST', '/api/batches', form('multipart/form-data', 'x')));
    tasks.push(call('POST', '/api/batches', form('multipart/form-data; boundary=', 'x')));
    tasks.push(call('POST', '/api/batches', form('multipart/form-data; boundary=abc', 'garbage')));
    tasks.push(
      call(
        'POST',
        '/api/batches',
        form('multipart/form-data; boundary=abc', '--abc\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nphone\r\n'),
      ),
    );
    tasks.push(call('POST', '/api/batches', form('application/json', '{}')));
    tasks.push(call('POST', '/api/batches', form('text/plain', 'phone\n1')));
    for (const name of ['__proto__', 'constructor', 'toString']) {
      const fields = new FormData();
      fields.append(name, 'x');
      tasks.push(call('POST', '/api/batches', { body: fields }));
      const withFile = new FormData();
      withFile.append(name, 'true');
      withFile.append('dryRun', 'true');
      withFile.append('file', new Blob([fixtureText()], { type: 'text/csv' }), name);
      tasks.push(call('POST', '/api/batches', { body: withFile }));
    }

    const answers = await inBatches(tasks, 16);
    expect(answers.length).toBeGreaterThan(1000);
    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    if (process.env.FUZZ_DEBUG) console.log(Object.fromEntries(byStatus));
    // The requests got past the access check: they were answered by the routes, mostly "no such batch".
    expect(byStatus.get(404)).toBeGreaterThan(answers.length / 2);
    expect(answers.filter((a) => a.status === 401 && !a.path.startsWith('/login'))).toEqual([]);
    // A 5xx here is a crash or an unhandled error (or the process is gone: status 0). Every one of these
    // requests is the client's mistake, so the right answer is a 4xx (or 2xx/3xx where it is fine).
    expect(answers.filter((a) => a.status === 0 || a.status >= 500).map((a) => `${a.method} ${a.path.slice(0, 120)} → ${a.status} ${a.error ?? ''}`)).toEqual(
      [],
    );
    // The ids that name other Redis keys of a real batch are not batches.
    for (const suffix of [':chats', ':order', ':rejected']) {
      const events = answers.find((a) => a.method === 'GET' && a.path === `/api/batches/${dryRunId}${suffix}/events`);
      expect(events?.status).toBe(404);
    }
    // No Object.prototype pollution leaked into the server's answers.
    const list = await con.json<{ batches: Json[] }>('/api/batches');
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain('polluted');

    expect(con.process.running()).toBe(true);
    const health = await con.json('/healthz', { auth: false });
    expect(health).toEqual({ status: 200, body: { ok: true, redis: 'ok', workers: 1 } });
  }, 180_000);

  it('answers ?limit=1e999 (Infinity after coercion) 400, not a Redis error', async () => {
    for (const limit of ['1e999', '9'.repeat(400)]) {
      expect(await con.json(`/api/batches?limit=${limit}`)).toEqual({
        status: 400,
        body: { error: 'ERR_BAD_REQUEST', message: expect.stringContaining('limit') },
      });
    }
  });

  it('answers an upload without a multipart boundary 400 with a message that says so', async () => {
    const response = await con.json('/api/batches', { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'phone\n1\n' });
    expect(response).toEqual({ status: 400, body: { error: 'ERR_USAGE', message: expect.stringContaining('no multipart boundary') } });
    const truncated = await con.json('/api/batches', {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=abc' },
      body: '--abc\r\nContent-Disp',
    });
    expect(truncated).toEqual({ status: 400, body: { error: 'ERR_USAGE', message: expect.stringContaining('not a well-formed multipart/form-data body') } });
  });

  it('serves Bull Board under a same-origin Content-Security-Policy, with no remote script, style or font', async () => {
    const response = await con.request('/admin/queues');
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).not.toBe('');
    const directives = new Map(
      csp
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .filter((words) => words[0])
        .map(([name, ...sources]) => [name as string, sources]),
    );
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    // Script, style and font sources are keywords or data: only — no host, no scheme that reaches one.
    for (const name of ['default-src', 'script-src', 'style-src', 'font-src', 'connect-src']) {
      for (const source of directives.get(name) ?? [])
        expect({ name, source, allowed: /^('self'|'none'|'unsafe-inline'|data:)$/.test(source) }).toEqual({ name, source, allowed: true });
    }
    const html = await response.text();
    expect(html).toContain('<title>bulk-unassign</title>');
    const urls = [...html.matchAll(/<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']([^"']+)["']/gi)].map((m) => m[1] as string);
    expect(urls.length).toBeGreaterThan(0);
    const page = new URL('/admin/queues/', con.url); // the page's <base href>
    for (const url of urls) expect({ url, origin: new URL(url, page).origin }).toEqual({ url, origin: page.origin });
    expect(html).not.toMatch(/https?:\/\/|\/\/fonts\./i);
    // The stylesheets it loads import nothing from elsewhere either.
    for (const sheet of urls.filter((u) => u.endsWith('.css'))) {
      const css = await (await con.request(new URL(sheet, page).pathname)).text();
      expect(css).not.toMatch(/@import|url\(\s*["']?(?:https?:)?\/\//i);
    }
  });
});

describe('report download that fails while streaming', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv();
    con = await startTestConsole(env);
  });
  afterAll(() => closeTestConsole(con, env));

  it('answers an unreadable report file with an error, and the process stays up', async () => {
    const upload = await con.upload(fixtureText(), 'console.csv', { dryRun: 'true' });
    const id = upload.body.id as string;
    // The file opens but every read fails (EISDIR): the stream errors after the route has handed it over.
    const path = join(env.config.reportsDir, id, 'failed.csv');
    await rm(path, { force: true });
    await mkdir(path);
    const response = await con.request(`/api/batches/${id}/reports/failed.csv`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: 'ERR_INTERNAL', message: 'internal error (see the server log)' });
    expect(con.process.running()).toBe(true);
    expect((await con.json('/healthz', { auth: false })).status).toBe(200);
    expect((await con.request(`/api/batches/${id}/reports/summary.json`)).status).toBe(200);
  });
});

describe('live progress stream: batch ids and the cap on open streams', () => {
  let env: TestEnv;
  let con: TestConsole;
  let batchId = '';
  const MAX_STREAMS = 100;
  beforeAll(async () => {
    // No worker: the batch stays running, so its progress streams stay open until the client leaves.
    env = await makeTestEnv();
    con = await startTestConsole(env, { worker: false });
    const upload = await con.upload(fixtureText(), 'console.csv');
    expect(upload.status).toBe(201);
    batchId = upload.body.id as string;
  });
  afterAll(() => closeTestConsole(con, env));

  it('checks the batch id as the other batch routes do: other keys of a batch are not batches', async () => {
    for (const id of [`${batchId}:chats`, `${batchId}:rejected`, `${batchId}:results`, 'not-a-batch-id', '..%2F..']) {
      const response = await con.request(`/api/batches/${id}/events`);
      expect({ id, status: response.status }).toEqual({ id, status: 404 });
      expect(await response.json()).toMatchObject({ error: 'ERR_NOT_FOUND' });
    }
  });

  it(`answers 503 with Retry-After beyond ${MAX_STREAMS} open streams, and frees a slot when a stream closes`, async () => {
    const open: AbortController[] = [];
    const openStream = async (): Promise<Response> => {
      const controller = new AbortController();
      const response = await con.request(`/api/batches/${batchId}/events`, { signal: controller.signal });
      if (response.status === 200) open.push(controller);
      else await response.arrayBuffer();
      return response;
    };
    try {
      const first = await inBatches(
        Array.from({ length: MAX_STREAMS }, () => openStream),
        25,
      );
      expect(first.map((r) => r.status)).toEqual(Array.from({ length: MAX_STREAMS }, () => 200));

      const over = await openStream();
      expect(over.status).toBe(503);
      expect(over.headers.get('retry-after')).toBe('10');

      // One client leaves: its slot comes back (the server sees the close a moment later).
      open.shift()?.abort();
      const again = await eventually(
        async () => {
          const response = await openStream();
          return response.status !== 503 && response;
        },
        { timeoutMs: 10_000, intervalMs: 100, message: 'a stream slot to come back after a client left' },
      );
      expect(again.status).toBe(200);
      expect((await openStream()).status).toBe(503);
    } finally {
      for (const controller of open) controller.abort();
    }
    // All closed: streams can be opened again.
    const after = await eventually(
      async () => {
        const response = await con.request(`/api/batches/${batchId}/events`, { signal: AbortSignal.timeout(5000) });
        if (response.status !== 503) return response;
        await response.arrayBuffer();
        return false;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'streams to open again once every client left' },
    );
    expect(after.status).toBe(200);
    await after.body?.cancel();
    expect(con.process.running()).toBe(true);
  });
});

describe('log-in throttling and the Secure cookie behind a proxy (TRUST_PROXY=1)', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv();
    // One proxy hop: the client address is the last X-Forwarded-For entry, the scheme X-Forwarded-Proto.
    con = await startTestConsole(env, { extraEnv: { TRUST_PROXY: '1' } });
  });
  afterAll(() => closeTestConsole(con, env));

  const login = (token: string, client: string, headers: Record<string, string> = {}): Promise<Response> =>
    con.request('/login', { auth: false, method: 'POST', body: new URLSearchParams({ token }), headers: { 'x-forwarded-for': client, ...headers } });

  it('20 wrong tokens from one address, then the right one logs in at once', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i += 1) statuses.push((await login(`wrong-token-${i}-0123456789`, '198.51.100.7')).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.at(-1)).toBe(429);
    const started = Date.now();
    const good = await login(CONSOLE_TOKEN, '198.51.100.7');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(good.status).toBe(303);
    expect(good.headers.get('set-cookie')).toMatch(/^bu_console=/);
    // Another address behind the same proxy was never slowed down.
    expect((await login('wrong-token-elsewhere-0123', '198.51.100.8')).status).toBe(401);
  });

  it('slows down wrong Bearer tokens the same way (429, Retry-After growing), never the right one', async () => {
    const answers: { status: number; retryAfter: string | null }[] = [];
    for (let i = 0; i < 12; i += 1) {
      const response = await con.request('/api/batches', {
        headers: { authorization: `Bearer guess-${i}-0123456789abcdef`, 'x-forwarded-for': '203.0.113.50' },
      });
      answers.push({ status: response.status, retryAfter: response.headers.get('retry-after') });
      await response.arrayBuffer();
    }
    expect(answers.slice(0, 5).map((a) => a.status)).toEqual([401, 401, 401, 401, 401]);
    const slowed = answers.slice(5);
    expect(slowed.map((a) => a.status)).toEqual(slowed.map(() => 429));
    const waits = slowed.map((a) => Number(a.retryAfter));
    expect(waits.every((w) => Number.isInteger(w) && w >= 1)).toBe(true);
    expect(waits).toEqual([...waits].sort((a, b) => a - b));
    expect(waits.at(-1)).toBeGreaterThan(waits[0] as number);
    // Failures by form and by header count together: the form is slowed down for this address too.
    expect((await login('wrong-token-form-0123456789', '203.0.113.50')).status).toBe(429);
    // The right token from the same address is served at once.
    const right = await con.request('/api/batches', { headers: { authorization: `Bearer ${CONSOLE_TOKEN}`, 'x-forwarded-for': '203.0.113.50' } });
    expect(right.status).toBe(200);
  });

  it('marks the session cookie Secure when the proxy says the browser speaks https', async () => {
    const tls = await login(CONSOLE_TOKEN, '192.0.2.10', { 'x-forwarded-proto': 'https' });
    expect(tls.status).toBe(303);
    expect(tls.headers.get('set-cookie')).toMatch(/^bu_console=[^;]+; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict; Secure$/);
    const plain = await login(CONSOLE_TOKEN, '192.0.2.10');
    expect(plain.headers.get('set-cookie')).not.toContain('Secure');
    const logout = await con.request('/logout', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
    expect(logout.headers.get('set-cookie')).toMatch(/Max-Age=0; HttpOnly; SameSite=Strict; Secure$/);
  });
});

describe('TRUST_PROXY off (the default): forwarded headers are not believed', () => {
  let env: TestEnv;
  let con: TestConsole;
  beforeAll(async () => {
    env = await makeTestEnv();
    con = await startTestConsole(env);
  });
  afterAll(() => closeTestConsole(con, env));

  it('ignores X-Forwarded-Proto and X-Forwarded-For from a direct client', async () => {
    const response = await con.request('/login', {
      auth: false,
      method: 'POST',
      body: new URLSearchParams({ token: CONSOLE_TOKEN }),
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '192.0.2.99' },
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('set-cookie')).not.toContain('Secure');
    // A client cannot dodge the throttle by inventing addresses: they all count as the peer's.
    const statuses: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const wrong = await con.request('/api/batches', { headers: { authorization: `Bearer nope-${i}-0123456789abcdef`, 'x-forwarded-for': `192.0.2.${i}` } });
      statuses.push(wrong.status);
      await wrong.arrayBuffer();
    }
    expect(statuses.at(-1)).toBe(429);
  });
});
