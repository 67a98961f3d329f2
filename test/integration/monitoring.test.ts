/**
 * The monitoring that ships in deploy/ against a real console: a batch and a failed scheduled run go through it,
 * then GET /metrics must export every series (and every label and label value selected) that the Grafana
 * dashboard's PromQL and the Prometheus alert rules use. Also the image's health check (deploy/docker/
 * healthcheck.mjs) against that console, and `serve` reading its token from CONSOLE_TOKEN_FILE, the way
 * docker-compose.yml runs it. The deploy files' structure is test/unit/deploy-files.test.ts's job.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { deletePrefix, makeTestEnv, redisUrl, type TestEnv, uniquePrefix } from '../helpers/harness.js';
import { closeTestConsole, FIXTURE, FIXTURE_FAULTS, fixtureText, startTestConsole, type TestConsole } from '../helpers/console.js';
import { type SpawnedCli, spawnCli } from '../helpers/processes.js';
import { eventually } from '../helpers/eventually.js';
import { adaptiveSettingsOf, makeAdaptiveLimiter } from '../../src/execution/adaptive-limiter.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HEALTHCHECK = join(ROOT, 'deploy/docker/healthcheck.mjs');
const jsYaml = createRequire(import.meta.url)('js-yaml') as { safeLoad?: (text: string) => unknown; load: (text: string) => unknown };
const parseYaml = (path: string): unknown => (jsYaml.safeLoad ?? jsYaml.load)(readFileSync(join(ROOT, path), 'utf8'));

/** Every PromQL expression the dashboard (panel targets, variable queries) and the alert rules use. */
function deployExpressions(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/bulk-unassign-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; query: unknown }[] };
  };
  const alerts = parseYaml('deploy/prometheus/alerts.yml') as { groups: { rules: { alert: string; expr: string }[] }[] };
  return [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard panel "${p.title}"`, expr: t.expr }))),
    ...dashboard.templating.list
      .map((v) => ({
        where: `dashboard variable ${v.name}`,
        expr: typeof v.query === 'string' ? v.query : ((v.query as { query?: string } | undefined)?.query ?? ''),
      }))
      .filter((v) => v.expr.includes('bulk_unassign_')),
    ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
  ];
}

/** One selector in an expression: the series name and its label matchers (`label`, op, value). */
interface Selector {
  readonly name: string;
  readonly matchers: readonly { label: string; op: string; value: string }[];
}

function selectors(expr: string): Selector[] {
  return [...expr.matchAll(/\b(bulk_unassign_[a-z0-9_]+)(\{([^}]*)\})?/g)].map((m) => ({
    name: m[1] as string,
    matchers: [...(m[3] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map((x) => ({
      label: x[1] as string,
      op: x[2] as string,
      value: x[3] as string,
    })),
  }));
}

/** A Prometheus text exposition: sample names with their label sets, and each metric's TYPE. */
interface Scrape {
  readonly types: Map<string, string>;
  readonly samples: Map<string, Record<string, string>[]>;
  value(name: string, labels?: Record<string, string>): number | undefined;
}

function parseScrape(text: string): Scrape {
  const types = new Map<string, string>();
  const samples = new Map<string, Record<string, string>[]>();
  const values: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    const sample = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) continue;
    const labels = Object.fromEntries([...(sample[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1] as string, l[2] as string]));
    const name = sample[1] as string;
    samples.set(name, [...(samples.get(name) ?? []), labels]);
    values.push({ name, labels, value: Number(sample[4]) });
  }
  return {
    types,
    samples,
    value: (name, labels = {}) =>
      values.find(
        (v) => v.name === name && Object.keys(labels).length === Object.keys(v.labels).length && Object.entries(labels).every(([k, x]) => v.labels[k] === x),
      )?.value,
  };
}

/** Labels Prometheus adds to every scraped series, and the histogram bucket label. */
const TARGET_LABELS = new Set(['job', 'instance']);

/** Why a selector does not match what the console exports, or undefined when it does. */
function unexported(selector: Selector, scrape: Scrape): string | undefined {
  const histogramPart = /^(.*)_(bucket|sum|count)$/.exec(selector.name);
  const base = histogramPart && scrape.types.get(histogramPart[1] as string) === 'histogram' ? (histogramPart[1] as string) : undefined;
  if (!base && !scrape.types.has(selector.name)) return `${selector.name} is not exported`;
  const sampleSets = scrape.samples.get(selector.name) ?? [];
  if (sampleSets.length === 0) return `${selector.name} has no sample`;
  for (const { label, op, value } of selector.matchers) {
    if (TARGET_LABELS.has(label)) continue;
    const values = new Set(sampleSets.map((labels) => labels[label]).filter((v): v is string => v !== undefined));
    if (values.size === 0) return `${selector.name} has no label ${label}`;
    // Each value an equality or alternation selects must exist: a typo ("stoped") would select nothing, silently.
    if (op === '=' || op === '=~') {
      const wanted = op === '=' ? [value] : value.split('|');
      const missing = wanted.filter((v) => /^[\w-]+$/.test(v) && !values.has(v));
      if (missing.length > 0) return `${selector.name}{${label}} has no value ${missing.join(', ')} (has ${[...values].join(', ')})`;
    }
  }
  return undefined;
}

function runHealthcheck(args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [HEALTHCHECK, ...args], { timeout: 15_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}`.trim() });
    });
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('monitoring: the deploy/ dashboard and alerts against a real console', () => {
  let env: TestEnv;
  let con: TestConsole;
  let inbox = '';
  let scrapeText = '';
  beforeAll(async () => {
    env = await makeTestEnv({ api: { faults: FIXTURE_FAULTS }, config: { maxAttempts: 2, rateLimitMax: 20, rateLimitDurationMs: 1000 } });
    con = await startTestConsole(env);
    inbox = join(env.dir, 'inbox');
    mkdirSync(inbox);
  });
  afterAll(() => closeTestConsole(con, env));

  it('runs a batch through the console and records a failed scheduled run', async () => {
    const upload = await con.upload(fixtureText(), 'console.csv', { name: 'monitoring' });
    expect(upload.status).toBe(201);
    const id = upload.body.id as string;
    await eventually(async () => (await con.json<{ status: string }>(`/api/batches/${id}`)).body.status === 'finished', {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: `batch ${id} to finish`,
    });

    // A schedule whose inbox folder went away: its run fails, as `schedule show` and the worker log would say.
    const set = spawnCli(env, ['schedule', 'set', 'nightly', '--cron', '0 2 * * *', '--tz', 'UTC', '--inbox', inbox]);
    expect((await set.exited).code).toBe(0);
    rmSync(inbox, { recursive: true });
    const run = spawnCli(env, ['schedule', 'run-now', 'nightly']);
    expect({ code: (await run.exited).code, output: run.output() }).toEqual({ code: 3, output: expect.stringContaining('cannot be read') });
  });

  it('exports every series, label and label value the dashboard and the alert rules select', async () => {
    // What a worker running with RATE_LIMIT_MAX=auto stores: the adaptive series are exported once there is state.
    const limiter = makeAdaptiveLimiter(env.ctx.redis, {
      keys: env.ctx.keys,
      baseUrl: env.config.baseUrl,
      apiKey: env.config.apiKey ?? '',
      settings: adaptiveSettingsOf(env.config),
    });
    await limiter.observe({ kind: 'response', statusCode: 201, body: { success: true }, latencyMs: 5 });
    await limiter.flush();
    await limiter.close();
    const response = await con.request('/metrics');
    expect(response.status).toBe(200);
    scrapeText = await response.text();
    const scrape = parseScrape(scrapeText);
    const expressions = deployExpressions();
    expect(expressions.length).toBeGreaterThan(10);
    const problems = expressions.flatMap(({ where, expr }) =>
      selectors(expr)
        .map((s) => unexported(s, scrape))
        .filter((why): why is string => why !== undefined)
        .map((why) => `${where}: ${why}`),
    );
    expect(problems).toEqual([]);
    // Every series the console exports is used somewhere (a new one belongs on the dashboard or in an alert).
    const used = new Set(expressions.flatMap(({ expr }) => selectors(expr).map((s) => s.name.replace(/_(bucket|sum|count)$/, ''))));
    const exported = [...scrape.types.keys()].filter((name) => name.startsWith('bulk_unassign_'));
    expect(exported.filter((name) => !used.has(name))).toEqual([]);
  });

  it('reports the batch, the calls, the limit and the schedule run as they happened', () => {
    const scrape = parseScrape(scrapeText);
    const stats = env.api.stats();
    expect(scrape.value('bulk_unassign_chats_total', { outcome: 'succeeded' })).toBe(Object.keys(stats.unassigned).length);
    expect(scrape.value('bulk_unassign_chats_total', { outcome: 'failed' })).toBe(FIXTURE.permanent + FIXTURE.transient);
    // Every unassign call the stand-in server received, each counted once (no 429 in this run).
    expect(stats.rateLimited).toBe(0);
    expect(scrape.value('bulk_unassign_api_calls_total')).toBe(stats.requests - stats.listRequests);
    expect(scrape.value('bulk_unassign_rate_limit_per_second')).toBe(20);
    expect(scrape.value('bulk_unassign_batches', { status: 'finished' })).toBe(1);
    expect(scrape.value('bulk_unassign_batches', { status: 'stopped' })).toBe(0);
    expect(scrape.value('bulk_unassign_workers')).toBe(1);
    const failedAt = scrape.value('bulk_unassign_schedule_last_run_timestamp_seconds', { schedule: 'nightly', outcome: 'failed' }) ?? 0;
    expect(Math.abs(Date.now() / 1000 - failedAt)).toBeLessThan(120);
    expect(scrape.value('bulk_unassign_schedule_last_run_timestamp_seconds', { schedule: 'nightly', outcome: 'started' })).toBe(0);
  });

  describe('the image health check and a console as docker-compose.yml runs it', () => {
    let bare: SpawnedCli;
    let bareUrl = '';
    let otherPrefix = '';
    let secrets = '';
    let stub: Server;
    let stubPort = 0;
    const TOKEN = 'compose-token-from-a-file-0123456789';
    beforeAll(async () => {
      // `serve --no-worker` with the token in a file and no API key, on a prefix no worker serves: /healthz is 503.
      secrets = mkdtempSync(join(tmpdir(), 'bulk-unassign-secrets-'));
      writeFileSync(join(secrets, 'console_token'), `${TOKEN}\n`);
      otherPrefix = uniquePrefix('compose');
      bare = spawnCli(env, ['serve', '--no-worker', '--host', '0.0.0.0', '--port', '0'], {
        CONSOLE_TOKEN_FILE: join(secrets, 'console_token'),
        DOUBLETICK_API_KEY: '',
        QUEUE_PREFIX: otherPrefix,
      });
      await bare.waitForOutput('console listening on ');
      bareUrl = /console listening on (http:\/\/\S+)/.exec(bare.output())?.[1] ?? '';
      stub = createServer((_request, response) => response.writeHead(503, { 'content-type': 'text/html' }).end('<h1>Service Unavailable</h1>'));
      stubPort = await listen(stub);
    });
    afterAll(async () => {
      bare?.kill('SIGINT');
      await bare?.exited;
      await new Promise((resolve) => stub?.close(resolve));
      await deletePrefix(redisUrl(), otherPrefix);
      rmSync(secrets, { recursive: true, force: true });
    });

    it('serve takes its token from CONSOLE_TOKEN_FILE and needs no API key without a worker', async () => {
      const denied = await fetch(`${bareUrl}/metrics`);
      expect(denied.status).toBe(401);
      const metrics = await fetch(`${bareUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('bulk_unassign_workers 0');
      expect(bare.output()).not.toContain(TOKEN);
    });

    it('is healthy while /healthz answers: 200, or its own 503 (no worker) unless --strict', async () => {
      const withWorker = await runHealthcheck([`${con.url}/healthz`]);
      expect(withWorker).toEqual({ code: 0, out: expect.stringMatching(/^healthy: .* answered 200 \{"ok":true,"redis":"ok","workers":1\}$/) });
      const noWorker = await runHealthcheck([`${bareUrl}/healthz`]);
      expect(noWorker).toEqual({ code: 0, out: expect.stringMatching(/^healthy: .* answered 503 \{"ok":false,"redis":"ok","workers":0\}$/) });
      expect(await runHealthcheck(['--strict', `${bareUrl}/healthz`])).toEqual({ code: 1, out: expect.stringMatching(/^unhealthy: .* answered 503/) });
    });

    it('is unhealthy when nothing answers, or something that is not the console answers 503', async () => {
      const closed = createServer();
      const port = await listen(closed);
      await new Promise((resolve) => closed.close(resolve));
      expect(await runHealthcheck([`http://127.0.0.1:${port}/healthz`])).toEqual({
        code: 1,
        out: expect.stringMatching(/^unhealthy: .* did not answer \(ECONNREFUSED\)$/),
      });
      expect(await runHealthcheck([`http://127.0.0.1:${stubPort}/healthz`])).toEqual({
        code: 1,
        out: expect.stringMatching(/^unhealthy: .* answered 503 <h1>/),
      });
    });

    it("finds the console's port on the container's command line, and lets a worker be", async () => {
      const proc = mkdtempSync(join(tmpdir(), 'bulk-unassign-proc-'));
      const processes = (list: Record<string, string[]>): void => {
        rmSync(proc, { recursive: true, force: true });
        for (const [pid, argv] of Object.entries(list)) {
          mkdirSync(join(proc, pid), { recursive: true });
          writeFileSync(join(proc, pid, 'cmdline'), `${argv.join('\0')}\0`);
        }
      };
      try {
        const port = new URL(bareUrl).port;
        processes({
          '1': ['node', 'dist/src/main.js', 'serve', '--no-worker', '--host', '0.0.0.0', '--port', port],
          '42': ['node', '/app/deploy/docker/healthcheck.mjs'],
        });
        expect(await runHealthcheck(['--proc', proc])).toEqual({
          code: 0,
          out: expect.stringContaining(`healthy: http://127.0.0.1:${port}/healthz answered 503`),
        });
        processes({
          '1': ['/sbin/docker-init', '--', 'node', 'dist/src/main.js', 'serve', `--port=${stubPort}`],
          '7': ['node', 'dist/src/main.js', 'serve', `--port=${stubPort}`],
        });
        expect(await runHealthcheck(['--proc', proc])).toEqual({
          code: 1,
          out: expect.stringContaining(`unhealthy: http://127.0.0.1:${stubPort}/healthz answered 503`),
        });
        processes({ '1': ['node', 'dist/src/main.js', 'worker', '--redis-url', 'redis://:s3cret@redis:6379'] });
        const worker = await runHealthcheck(['--proc', proc]);
        expect(worker).toEqual({ code: 0, out: expect.stringMatching(/^healthy: bulk-unassign \(pid 1\) runs a command that serves no HTTP/) });
        expect(worker.out).not.toContain('s3cret');
        processes({ '1': ['sh'] });
        expect(await runHealthcheck(['--proc', proc])).toEqual({ code: 1, out: expect.stringMatching(/^unhealthy: no bulk-unassign process/) });
      } finally {
        rmSync(proc, { recursive: true, force: true });
      }
    });
  });
});
