/**
 * The deployment files checked against the repository, since no test here can build the image or start compose:
 * Dockerfile, .dockerignore, docker-compose.yml, and the monitoring under deploy/ (Grafana dashboard, Prometheus
 * alerts and scrape config). That every metric they use is exported is test/integration/monitoring.test.ts's job.
 *
 * YAML is read with js-yaml, which is already in node_modules (Jest's coverage tooling depends on it), so the
 * checks see the structure Docker and Prometheus see rather than matching text.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { ENV_NAMES } from '../../src/config/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

type Yaml = Record<string, unknown>;
const jsYaml = createRequire(import.meta.url)('js-yaml') as { safeLoad?: (text: string) => unknown; load: (text: string) => unknown };
/** js-yaml 3 has safeLoad (its load allows JS types); js-yaml 4's load is the safe one. */
function parseYaml(path: string): Yaml {
  return (jsYaml.safeLoad ?? jsYaml.load)(read(path)) as Yaml;
}

const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; bin: Record<string, string> };
const tsconfig = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string }; include: string[] };

// ---- Dockerfile ----

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Copy {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  /** Absolute path in the image. */
  readonly dest: string;
  /** Where each source lands: in `dest` by its base name when there are several or `dest` ends with `/`, else at `dest`. */
  readonly targets: readonly { source: string; at: string }[];
}
interface Stage {
  readonly name: string;
  readonly base: string;
  readonly instructions: Instruction[];
  readonly copies: Copy[];
  readonly runs: string[];
  workdir: string;
}

/** Instructions with line continuations joined and comments dropped (enough for this Dockerfile's syntax). */
function instructions(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && current === '') continue;
    if (line.endsWith('\\')) current += `${line.slice(0, -1)} `;
    else if (`${current}${line}`.trim() !== '') {
      logical.push(`${current}${line}`.trim());
      current = '';
    }
  }
  return logical.map((line) => {
    const [op = '', ...rest] = line.split(/\s+/);
    return { op: op.toUpperCase(), args: rest.join(' ') };
  });
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  for (const instruction of instructions(text)) {
    if (instruction.op === 'FROM') {
      const [base = '', as, name] = instruction.args.split(/\s+/);
      out.push({ name: as?.toUpperCase() === 'AS' && name ? name : String(out.length), base, instructions: [], copies: [], runs: [], workdir: '/' });
      continue;
    }
    const stage = out.at(-1);
    if (!stage) throw new Error(`${instruction.op} before FROM`);
    stage.instructions.push(instruction);
    if (instruction.op === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, instruction.args);
    if (instruction.op === 'RUN') stage.runs.push(instruction.args);
    if (instruction.op === 'COPY') {
      const words = instruction.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      const rawDest = paths.at(-1) ?? '';
      const dest = posix.resolve(stage.workdir, rawDest);
      const sources = paths.slice(0, -1);
      const intoDir = sources.length > 1 || rawDest.endsWith('/');
      const targets = sources.map((source) => ({ source, at: intoDir ? posix.join(dest, posix.basename(source)) : dest }));
      stage.copies.push({ from, sources, dest, targets });
    }
  }
  return out;
}

/** `["a", "b"]` exec form of ENTRYPOINT/CMD/HEALTHCHECK CMD, or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  const json = /\[.*\]$/.exec(args)?.[0];
  return json ? (JSON.parse(json) as string[]) : undefined;
}

const DOCKERFILE = read('Dockerfile');
const STAGES = stages(DOCKERFILE);
const BUILD = STAGES[0] as Stage;
const RUNTIME = STAGES.at(-1) as Stage;

/** .dockerignore patterns as regexes over repo-relative paths (a pattern also excludes everything under what it matches). */
function dockerIgnore(): { excluded(path: string): boolean } {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  expect(patterns.every((p) => !p.startsWith('!'))).toBe(true); // no exceptions: the matcher below does not do them
  const regexes = patterns.map((pattern) => {
    const body = pattern
      .replace(/^\/+|\/+$/g, '')
      .split('')
      .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')
      .replace(/\[\^\/\]\*\[\^\/\]\*/g, '.*');
    return new RegExp(`^${body}(/.*)?$`);
  });
  return { excluded: (path) => regexes.some((r) => r.test(path.replace(/^\.\//, '').replace(/\/+$/, ''))) };
}

/** Files under a repo path (the path itself if it is a file). */
function filesUnder(path: string): string[] {
  const full = join(ROOT, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/**
 * Where the compiled code reads files outside dist/ at run time: every `new URL('../…', import.meta.url)` in src/
 * and jobs/ that, resolved from the module's place under dist/, lands outside dist/. Returned as paths relative to
 * the image's WORKDIR (= the repository root), e.g. `src/console/public/`.
 */
function runtimeReadsOutsideDist(): { from: string; path: string }[] {
  const out: { from: string; path: string }[] = [];
  for (const top of ['src', 'jobs']) {
    for (const file of filesUnder(top).filter((f) => f.endsWith('.ts'))) {
      for (const match of read(file).matchAll(/new URL\('(\.\.\/[^']+)', import\.meta\.url\)/g)) {
        const compiledDir = posix.join(tsconfig.compilerOptions.outDir, posix.dirname(file));
        const target = posix.join(compiledDir, match[1] as string);
        if (!target.startsWith(`${tsconfig.compilerOptions.outDir}/`)) out.push({ from: file, path: target });
      }
    }
  }
  return out;
}

describe('Dockerfile', () => {
  it('builds in a stage with dev dependencies and runs from node:20-bookworm-slim with production dependencies only', () => {
    expect(STAGES.map((s) => s.base)).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    expect(BUILD.runs.some((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev'))).toBe(true);
    expect(BUILD.runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    expect(RUNTIME.runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
    // Whatever npm does in the runtime stage installs production dependencies or cleans up, nothing else.
    const npmCommands = RUNTIME.runs
      .flatMap((r) => r.split(/&&|;/))
      .map((c) => c.trim())
      .filter((c) => c.startsWith('npm '));
    for (const command of npmCommands) expect(command).toMatch(/^npm (ci\b.*--omit=dev|cache clean\b)/);
  });

  it('calls only npm scripts that package.json has, the ones CI runs (npm test builds with npm run build)', () => {
    const scripts = STAGES.flatMap((s) => s.runs).flatMap((r) => [...r.matchAll(/\bnpm run ([\w:-]+)/g)].map((m) => m[1] as string));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect({ script, defined: script in pkg.scripts }).toEqual({ script, defined: true });
    expect(pkg.scripts.test).toContain('npm run build');
    expect(read('.ci/run')).toMatch(/npm ci\b/);
  });

  it('copies from the build context only paths that exist and that .dockerignore lets through', () => {
    const ignore = dockerIgnore();
    const copied = STAGES.flatMap((s) => s.copies.filter((c) => c.from === undefined).flatMap((c) => c.sources));
    expect(copied.length).toBeGreaterThan(0);
    for (const source of copied) {
      expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true });
      const blocked = filesUnder(source).filter((file) => ignore.excluded(file));
      expect({ source, excludedByDockerignore: blocked }).toEqual({ source, excludedByDockerignore: [] });
    }
  });

  it('gives the build stage everything tsc compiles, and copies from it only what `npm run build` makes', () => {
    expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig\.json$/);
    const inBuild = BUILD.copies.flatMap((c) => c.sources.map((s) => s.replace(/\/$/, '')));
    expect(inBuild).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json']));
    for (const glob of tsconfig.include) {
      const top = glob.split('/')[0] as string;
      expect({ glob, copiedIntoBuild: inBuild.includes(top) }).toEqual({ glob, copiedIntoBuild: true });
    }
    const outDir = posix.join(BUILD.workdir, tsconfig.compilerOptions.outDir);
    for (const copy of RUNTIME.copies.filter((c) => c.from !== undefined)) {
      expect(copy.from).toBe(BUILD.name);
      for (const source of copy.sources) expect(source === outDir || source.startsWith(`${outDir}/`)).toBe(true);
    }
    expect(RUNTIME.copies.some((c) => c.from === BUILD.name && c.dest === posix.join(RUNTIME.workdir, tsconfig.compilerOptions.outDir))).toBe(true);
  });

  it('copies into the runtime image every file the compiled code reads outside dist/ (console page, Lua, demo CSV, package.json)', () => {
    const reads = runtimeReadsOutsideDist();
    // The ones this test was written for: if one moves, the scan above must still find it.
    expect(reads.map((r) => r.path)).toEqual(expect.arrayContaining(['src/console/public/', 'src/store/lua/', 'fixtures/demo.csv', 'package.json']));
    for (const { from, path } of reads) {
      const inImage = posix.join(RUNTIME.workdir, path).replace(/\/$/, '');
      const target = RUNTIME.copies
        .filter((c) => c.from === undefined)
        .flatMap((c) => c.targets)
        .find((t) => inImage === t.at || inImage.startsWith(`${t.at}/`));
      expect({ from, path, copied: target !== undefined }).toEqual({ from, path, copied: true });
      // Copied from the same place in the repository: the image keeps the repository's layout.
      const repoPath = posix.join(target?.source ?? '', posix.relative(target?.at ?? '', inImage));
      expect({ from, repoPath }).toEqual({ from, repoPath: path.replace(/\/$/, '') });
    }
    // The image's working directory is the repository root: ENTRYPOINT and the paths above are relative to it.
    expect(RUNTIME.workdir).toBe(BUILD.workdir);
  });

  it('runs as a user that is not root', () => {
    const users = RUNTIME.instructions.filter((i) => i.op === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0', '']).not.toContain(users.at(-1));
    const lastUser = RUNTIME.instructions.findLastIndex((i) => i.op === 'USER');
    expect(lastUser).toBeLessThan(RUNTIME.instructions.findIndex((i) => i.op === 'ENTRYPOINT'));
    // Nothing after it needs root.
    expect(RUNTIME.instructions.slice(lastUser).filter((i) => i.op === 'RUN')).toEqual([]);
  });

  it('has ENTRYPOINT node dist/src/main.js (the package bin), so `docker run IMAGE worker` runs the worker', () => {
    const entrypoints = RUNTIME.instructions.filter((i) => i.op === 'ENTRYPOINT');
    expect(entrypoints).toHaveLength(1);
    expect(execForm(entrypoints[0]?.args ?? '')).toEqual(['node', pkg.bin['bulk-unassign']]);
    expect(pkg.bin['bulk-unassign']).toBe('dist/src/main.js');
  });

  it('checks health with node and the script it copies (the slim image has no curl or wget)', () => {
    const healthchecks = RUNTIME.instructions.filter((i) => i.op === 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const command = execForm(healthchecks[0]?.args ?? '') as string[];
    expect(healthchecks[0]?.args).toMatch(/\bCMD \[/);
    expect(command[0]).toBe('node');
    const script = command[1] as string;
    const copied = RUNTIME.copies.flatMap((c) => (c.from === undefined ? c.targets : [])).find((t) => t.at === script);
    expect(copied?.source).toBe('deploy/docker/healthcheck.mjs');
    expect(existsSync(join(ROOT, 'deploy/docker/healthcheck.mjs'))).toBe(true);
    expect(DOCKERFILE).not.toMatch(/\b(curl|wget)\b/);
  });

  it('keeps installed packages, build output, run-time data and secrets out of the build context', () => {
    const ignore = dockerIgnore();
    for (const path of [
      'node_modules',
      'dist',
      'build',
      'reports',
      'test-artifacts',
      '.git',
      'bench/results.json',
      'bench/results.json.tmp',
      '.env',
      'secrets',
      'secrets/console_token',
    ]) {
      expect({ path, excluded: ignore.excluded(path) }).toEqual({ path, excluded: true });
    }
  });
});

// ---- docker-compose.yml ----

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[] | string;
  entrypoint?: string[] | string;
  container_name?: string;
  ports?: string[];
  environment?: Record<string, string | number>;
  secrets?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  profiles?: string[];
}
const COMPOSE = parseYaml('docker-compose.yml') as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};
const SERVICES = COMPOSE.services;
/** The services that run this project's image. */
const APP_SERVICES = ['worker', 'console'] as const;
const words = (value: string[] | string | undefined): string[] => (Array.isArray(value) ? value : (value ?? '').split(/\s+/).filter(Boolean));

describe('docker-compose.yml', () => {
  it('is YAML with redis, worker and console services', () => {
    expect(Object.keys(SERVICES)).toEqual(expect.arrayContaining(['redis', 'worker', 'console']));
  });

  it('runs Redis with AOF, fsync on every write and no eviction (the README says why)', () => {
    const command = words(SERVICES.redis?.command).join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync always');
    expect(command).toContain('--maxmemory-policy noeviction');
  });

  it('builds worker and console from the Dockerfile and installs nothing at container start', () => {
    for (const name of APP_SERVICES) {
      const service = SERVICES[name] as Service;
      const context = typeof service.build === 'string' ? service.build : service.build?.context;
      expect({ name, context }).toEqual({ name, context: '.' });
      const started = [...words(service.entrypoint), ...words(service.command)].join(' ');
      expect({ name, started }).toEqual({ name, started: expect.not.stringMatching(/\bnpm\b|\bnpx\b|\btsc\b|\bsh\b/) });
      expect(service.volumes ?? []).not.toContainEqual(expect.stringMatching(/^\.:/)); // no source tree mounted over /app
    }
    expect(words(SERVICES.worker?.command)).toEqual(['worker']);
    expect(words(SERVICES.console?.command)[0]).toBe('serve');
  });

  it('lets the worker scale: no container name, no published port', () => {
    expect(SERVICES.worker?.container_name).toBeUndefined();
    expect(SERVICES.worker?.ports).toBeUndefined();
  });

  it('publishes the console on port 3000, bound to every address in the container, with a health check', () => {
    const console = SERVICES.console as Service;
    expect(console.ports?.some((p) => /:3000$/.test(p))).toBe(true);
    const args = words(console.command);
    expect(args[args.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(args[args.indexOf('--port') + 1]).toBe('3000');
    expect(console.healthcheck?.test).toEqual(['CMD', 'node', '/app/deploy/docker/healthcheck.mjs']);
  });

  it('reads the API key and the console token from secret files under ./secrets/, never from a value in the file', () => {
    const expectSecretFile = (service: string, variable: string, secret: string): void => {
      const s = SERVICES[service] as Service;
      expect(s.environment?.[variable]).toBe(`/run/secrets/${secret}`);
      expect(s.secrets).toContain(secret);
      expect(COMPOSE.secrets[secret]?.file).toMatch(/^\.\/secrets\/[\w.-]+$/);
    };
    expectSecretFile('worker', ENV_NAMES.apiKeyFile, 'doubletick_api_key');
    expectSecretFile('console', ENV_NAMES.consoleTokenFile, 'console_token');
    for (const service of Object.values(SERVICES)) {
      expect(Object.keys(service.environment ?? {})).not.toEqual(expect.arrayContaining([ENV_NAMES.apiKey]));
      expect(Object.keys(service.environment ?? {})).not.toEqual(expect.arrayContaining([ENV_NAMES.consoleToken]));
    }
    expect(read('.gitignore').split('\n')).toContain('secrets/');
  });

  it('sets only variables the configuration knows', () => {
    const known = new Set<string>(Object.values(ENV_NAMES));
    for (const name of APP_SERVICES) {
      for (const variable of Object.keys(SERVICES[name]?.environment ?? {}))
        expect({ name, variable, known: known.has(variable) }).toEqual({ name, variable, known: true });
    }
  });

  it('mounts the monitoring files that exist (optional Prometheus)', () => {
    const prometheus = SERVICES.prometheus as Service;
    expect(prometheus.profiles).toEqual(['monitoring']);
    const mount = prometheus.volumes?.find((v) => v.endsWith(':/etc/prometheus:ro')) ?? '';
    expect(existsSync(join(ROOT, mount.split(':')[0] as string, 'prometheus.yml'))).toBe(true);
    expect(prometheus.secrets).toContain('console_token');
  });
});

// ---- deploy/: dashboard, alerts, scrape config ----

const DASHBOARD = JSON.parse(read('deploy/grafana/bulk-unassign-dashboard.json')) as {
  schemaVersion: number;
  uid: string;
  panels: {
    id: number;
    type: string;
    title: string;
    datasource?: { type: string; uid: string };
    gridPos: { x: number; w: number };
    targets?: { expr: string; datasource: { uid: string } }[];
  }[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};
const ALERTS = parseYaml('deploy/prometheus/alerts.yml') as {
  groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[];
};
const RULES = ALERTS.groups.flatMap((g) => g.rules);
const SCRAPE = parseYaml('deploy/prometheus/prometheus.yml') as {
  rule_files: string[];
  scrape_configs: {
    job_name: string;
    metrics_path: string;
    authorization?: { type: string; credentials_file?: string; credentials?: string };
    bearer_token?: string;
    static_configs: { targets: string[] }[];
  }[];
};
const DASHBOARD_EXPRS = DASHBOARD.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
const series = (expressions: readonly string[]): Set<string> => new Set(expressions.flatMap((e) => e.match(/bulk_unassign_[a-z0-9_]+/g) ?? []));

describe('deploy/grafana/bulk-unassign-dashboard.json', () => {
  it('is a Grafana dashboard (schemaVersion 39) on a Prometheus datasource variable DS_PROMETHEUS', () => {
    expect(DASHBOARD.schemaVersion).toBe(39);
    expect(DASHBOARD.templating.list).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', query: 'prometheus' }));
    const panels = DASHBOARD.panels.filter((p) => p.type !== 'row');
    expect(new Set(DASHBOARD.panels.map((p) => p.id)).size).toBe(DASHBOARD.panels.length);
    for (const panel of panels) {
      expect({ panel: panel.title, datasource: panel.datasource?.uid }).toEqual({ panel: panel.title, datasource: '${DS_PROMETHEUS}' });
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource.uid).toBe('${DS_PROMETHEUS}');
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
    }
  });

  it('covers chats by outcome, rate vs limit, 429s, API latency, queue depth and workers', () => {
    const used = series(DASHBOARD_EXPRS);
    for (const name of [
      'bulk_unassign_chats_total',
      'bulk_unassign_api_calls_total',
      'bulk_unassign_rate_limit_per_second',
      'bulk_unassign_api_rate_limited_total',
      'bulk_unassign_api_latency_seconds_bucket',
      'bulk_unassign_queue_jobs',
      'bulk_unassign_workers',
    ]) {
      expect({ name, used: used.has(name) }).toEqual({ name, used: true });
    }
    expect(DASHBOARD_EXPRS.join('\n')).toMatch(/sum by \(outcome\)/);
    expect(DASHBOARD_EXPRS.join('\n')).toMatch(/sum by \(state\) \(bulk_unassign_queue_jobs/);
    expect(DASHBOARD_EXPRS.join('\n')).toMatch(/histogram_quantile\(0\.95/);
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  const rule = (name: string) => RULES.find((r) => r.alert === name);

  it('has a name, expression, severity and summary for every rule', () => {
    expect(RULES.length).toBeGreaterThan(0);
    for (const r of RULES) {
      expect(r).toEqual(expect.objectContaining({ alert: expect.stringMatching(/^BulkUnassign[A-Za-z]+$/), expr: expect.any(String) }));
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary).toEqual(expect.any(String));
    }
  });

  it('alerts on no worker while chats wait (5 m), a stopped batch, a 429 storm (10 m) and a failed or skipped scheduled run', () => {
    expect(rule('BulkUnassignNoWorker')).toMatchObject({
      for: '5m',
      expr: expect.stringMatching(/bulk_unassign_workers[^]*== 0[^]*bulk_unassign_queue_jobs\{state="waiting"\}/),
    });
    expect(rule('BulkUnassignBatchStopped')?.expr).toMatch(/bulk_unassign_batches\{status="stopped"\}\) > 0/);
    expect(rule('BulkUnassignRateLimitStorm')).toMatchObject({ for: '10m', expr: expect.stringContaining('bulk_unassign_api_rate_limited_total') });
    expect(rule('BulkUnassignScheduledRunFailed')?.expr).toMatch(/bulk_unassign_schedule_last_run_timestamp_seconds\{outcome="failed"\}/);
    expect(rule('BulkUnassignScheduledRunSkipped')?.expr).toMatch(/bulk_unassign_schedule_last_run_timestamp_seconds\{outcome="skipped"\}/);
  });

  it('has a promtool unit test beside it that loads it', () => {
    const unitTest = parseYaml('deploy/prometheus/alerts.test.yml') as { rule_files: string[]; tests: { alert_rule_test: { alertname: string }[] }[] };
    expect(unitTest.rule_files).toEqual(['alerts.yml']);
    const tested = new Set(unitTest.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    for (const r of RULES) expect({ alert: r.alert, tested: tested.has(r.alert) }).toEqual({ alert: r.alert, tested: true });
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  it('loads the alert rules beside it', () => {
    for (const file of SCRAPE.rule_files) expect(existsSync(join(ROOT, 'deploy/prometheus', file))).toBe(true);
    expect(SCRAPE.rule_files).toContain('alerts.yml');
  });

  it('scrapes the compose console with the console token from a file (GET /metrics needs it)', () => {
    const job = SCRAPE.scrape_configs.find((c) => c.metrics_path === '/metrics');
    expect(job?.authorization).toEqual({ type: 'Bearer', credentials_file: '/run/secrets/console_token' });
    expect(job?.bearer_token).toBeUndefined();
    expect(job?.static_configs.flatMap((s) => s.targets)).toEqual(['console:3000']);
    // The scrape-failure alert names this job.
    expect(RULES.find((r) => r.alert === 'BulkUnassignConsoleDown')?.expr).toContain(`job="${job?.job_name}"`);
    // And /metrics is indeed behind the token: only /healthz and /login are public.
    expect(read('src/console/auth.ts')).toMatch(/PUBLIC_PATHS: ReadonlySet<string> = new Set\(\['\/healthz', '\/login'\]\)/);
  });
});
