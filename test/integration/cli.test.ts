/**
 * The `bulk-unassign` binary as a user runs it (a subprocess of dist/src/main.js): exit codes 0/1/2/3, errors
 * that name file and line without a stack trace, --json output, and the ops commands end to end.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { type MockApi, startMockApi } from '../../src/devtools/mock-api.js';
import { redisAnswers } from '../../src/store/redis.js';
import { makeKeys } from '../../src/store/keys.js';
import { DATA_LAYOUT_VERSION } from '../../src/store/layout.js';
import { freePort } from '../../src/devtools/redis-server.js';
import { deletePrefix, phones, redisUrl, TEST_KEY, uniquePrefix } from '../helpers/harness.js';
import { eventually } from '../helpers/eventually.js';
import { keysUnder } from '../helpers/redis-dump.js';

const CLI = resolve('dist/src/main.js');
const WABA = '919000000000';
let api: MockApi;
let dir: string;
let prefix: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          REDIS_URL: redisUrl(),
          QUEUE_PREFIX: prefix,
          DOUBLETICK_API_KEY: TEST_KEY,
          DOUBLETICK_BASE_URL: api.url,
          REPORTS_DIR: join(dir, 'reports'),
          RATE_LIMIT_MAX: '0',
          REQUEST_TIMEOUT_MS: '2000',
          MAX_ATTEMPTS: '2',
          ...env,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const good = (n: number, start: number): string =>
  `phone\n${phones(n, start)
    .map((p) => `+${p}`)
    .join('\n')}\n`;

beforeAll(async () => {
  api = await startMockApi({ apiKey: TEST_KEY, faults: { rejectNumbers: phones(1, 500) } });
  dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-cli-'));
  prefix = uniquePrefix('cli');
});
afterAll(async () => {
  await api.close();
  await deletePrefix(redisUrl(), prefix);
  rmSync(dir, { recursive: true, force: true });
});

const noStack = (text: string): void => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('bulk-unassign CLI', () => {
  it('--help teaches commands, options, environment and exit codes; no command is a usage error', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['run <csv>', 'rerun <batchId>', 'RATE_LIMIT_MAX', 'Exit codes', 'Examples']) expect(help.stdout).toContain(word);
    expect((await cli([])).code).toBe(2);
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command `frobnicate`');
  });

  it('run: exit 0 when every chat is unassigned, with a report and a machine-readable result', async () => {
    const run = await cli(['run', file('ok.csv', good(20, 0)), '--waba', WABA, '--json', '-q']);
    expect(run.code).toBe(0);
    const batch = JSON.parse(run.stdout);
    expect(batch.counts).toMatchObject({ rows: 20, valid: 20, succeeded: 20, failed: 0 });
    expect(existsSync(join(dir, 'reports', batch.id, 'summary.json'))).toBe(true);
    const status = await cli(['status', batch.id, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ id: batch.id, status: 'finished' });
    const list = await cli(['batches', '--json', '--status', 'finished']);
    expect(JSON.parse(list.stdout).map((b: { id: string }) => b.id)).toContain(batch.id);
    const report = await cli(['report', batch.id]);
    expect(report.code).toBe(0);
    expect(report.stdout).toContain('summary.md');
  });

  it('run: exit 1 with failed and rejected rows; rerun of permanent-only failures says there is nothing to rerun', async () => {
    const run = await cli(['run', file('mixed.csv', `${good(5, 500)}not-a-phone\n`), '--waba', WABA, '-q']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/succeeded 4, failed 1/);
    const id = /batch (\S+) /.exec(run.stdout)?.[1] as string;
    const rerun = await cli(['rerun', id]);
    expect(rerun.code).toBe(2);
    expect(rerun.stderr).toMatch(/nothing to rerun .*--include-permanent/);
  });

  it('exit 2 for input errors, with file:line and no stack trace, and nothing enqueued', async () => {
    const before = JSON.parse((await cli(['batches', '--json'])).stdout).length;
    const broken = await cli(['run', file('broken.csv', `phone\n+${WABA}\n"+919811111111\n`), '--waba', WABA]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/broken\.csv:3(:\d+)?: a quoted cell is never closed/);
    noStack(broken.stderr);
    const none = await cli(['run', file('none.csv', 'phone\nabc\n12\n'), '--waba', WABA]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no valid rows');
    const header = await cli(['run', file('header.csv', 'name,email\nA,a@example.com\n')]);
    expect(header.code).toBe(2);
    expect(header.stderr).toMatch(/header\.csv:1: no phone or group column/);
    const missing = await cli(['run', join(dir, 'nope.csv')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    expect(JSON.parse((await cli(['batches', '--json'])).stdout).length).toBe(before);
  });

  it('exit 2 for configuration errors, naming the setting', async () => {
    const bad = await cli(['run', file('c.csv', good(1, 900)), '--waba', WABA], { RATE_LIMIT_MAX: 'lots' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('RATE_LIMIT_MAX');
    noStack(bad.stderr);
    const noKey = await cli(['run', file('c2.csv', good(1, 901)), '--waba', WABA], { DOUBLETICK_API_KEY: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('DOUBLETICK_API_KEY');
    const noRedis = await cli(['batches'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(noRedis.code).toBe(2);
    expect(noRedis.stderr).toMatch(/redis/i);
    noStack(noRedis.stderr);
  });

  it('exit 2 for a worker (or any command) on data of another layout version, naming both; the data is left alone', async () => {
    const other = uniquePrefix('cli-layout');
    const keys = makeKeys(other);
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
    try {
      await redis.set(keys.layout, String(DATA_LAYOUT_VERSION + 1));
      for (const args of [['worker'], ['batches']]) {
        const refused = await cli(args, { QUEUE_PREFIX: other });
        expect({ args, code: refused.code }).toEqual({ args, code: 2 });
        expect(refused.stderr).toContain(`data layout v${DATA_LAYOUT_VERSION + 1} (${keys.layout}), this build understands v${DATA_LAYOUT_VERSION}`);
        noStack(refused.stderr);
      }
      // Nothing was written under the prefix: the version key is all there is.
      expect(await keysUnder(redis, other)).toEqual([keys.layout]);
      expect(await redis.get(keys.layout)).toBe(String(DATA_LAYOUT_VERSION + 1));
    } finally {
      await redis.del(keys.layout);
      redis.disconnect();
    }
  });

  it('demo: runs end to end where no Redis answers, on a private redis-server, and checks itself', async () => {
    const port = await freePort();
    const demo = await cli(['demo', '-q'], { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(demo.stderr).toContain('starting a private redis-server');
    expect(demo.stdout).toContain('rows 300 = valid 293 + rejected 4 + duplicates 3');
    expect(demo.stdout).toContain('succeeded 286, failed 7');
    expect(demo.stdout).toContain('demo OK');
    expect(demo.code).toBe(0);
    expect(await redisAnswers(`redis://127.0.0.1:${port}`)).toBe(false); // stopped afterwards
  }, 90_000);

  it('exit 3 when the API key is rejected: the batch stops, says how to resume, and resume finishes it', async () => {
    const run = await cli(['run', file('key.csv', good(30, 1000)), '--waba', WABA, '-q'], { DOUBLETICK_API_KEY: 'key_wrong', WORKER_CONCURRENCY: '2' });
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('resume with: bulk-unassign resume');
    expect(run.stdout).toMatch(/failed 0/);
    expect(JSON.stringify(run)).not.toContain('key_wrong');
    const id = /batch (\S+) /.exec(run.stdout)?.[1] as string;
    expect((await cli(['resume', id])).code).toBe(0);
    // A `worker` process picks the resumed chats up; `status` follows it.
    const worker = spawn(process.execPath, [CLI, 'worker'], {
      cwd: dir,
      env: {
        ...process.env,
        REDIS_URL: redisUrl(),
        QUEUE_PREFIX: prefix,
        DOUBLETICK_API_KEY: TEST_KEY,
        DOUBLETICK_BASE_URL: api.url,
        REPORTS_DIR: join(dir, 'reports'),
        RATE_LIMIT_MAX: '0',
      },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((r) => worker.on('exit', (code) => r(code)));
    try {
      type StatusJson = { status: string; counts: { succeeded: number; failed: number } };
      const status = await eventually(
        async () => {
          const now = JSON.parse((await cli(['status', id, '--json'])).stdout) as StatusJson;
          return now.status === 'finished' && now;
        },
        { timeoutMs: 60_000, intervalMs: 300, message: `\`status ${id}\` to say finished` },
      );
      expect(status).toMatchObject({ status: 'finished', counts: { succeeded: 30, failed: 0 } });
    } finally {
      worker.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 90_000);
});
