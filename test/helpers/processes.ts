/**
 * CLI subprocesses for crash, restart and shutdown tests: `node dist/src/main.js <command>` against a TestEnv's
 * key prefix, stand-in server and settings. Every child is tracked, and `killAllChildren()` (call it in
 * afterEach) SIGKILLs whatever is still running, so a failed test never leaves a worker consuming from Redis.
 * Runs the compiled CLI: build first (`npx tsc -p tsconfig.json`), as for every CLI-subprocess test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type { TestEnv } from './harness.js';

export const CLI_PATH = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnedCli {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal (default SIGKILL) if the process is still running. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves once stdout or stderr contains `text`; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  /** Everything it printed so far (stdout then stderr), for assertion messages. */
  output(): string;
  running(): boolean;
}

const children = new Set<SpawnedCli>();

/** The TestEnv's settings as the environment variables a CLI process reads, plus `extraEnv` on top. */
export function cliEnv(env: TestEnv, extraEnv: Readonly<Record<string, string>> = {}): Record<string, string> {
  const c = env.config;
  return {
    PATH: process.env.PATH ?? '',
    DOUBLETICK_API_KEY: c.apiKey ?? '',
    DOUBLETICK_BASE_URL: c.baseUrl,
    REDIS_URL: c.redisUrl,
    QUEUE_PREFIX: c.queuePrefix,
    RATE_LIMIT_MAX: String(c.rateLimitMax),
    RATE_LIMIT_DURATION_MS: String(c.rateLimitDurationMs),
    WORKER_CONCURRENCY: String(c.workerConcurrency),
    MAX_ATTEMPTS: String(c.maxAttempts),
    REQUEST_TIMEOUT_MS: String(c.requestTimeoutMs),
    REPORTS_DIR: c.reportsDir,
    DUPLICATE_WINDOW_HOURS: '0',
    LOG_LEVEL: 'warn',
    ...(c.lockDurationMs === undefined ? {} : { LOCK_DURATION_MS: String(c.lockDurationMs) }),
    ...extraEnv,
  };
}

/** Starts `node dist/src/main.js ...args` in the env's temp dir (so no stray .env is read). */
export function spawnCli(env: TestEnv, args: readonly string[], extraEnv: Readonly<Record<string, string>> = {}): SpawnedCli {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: env.dir, env: cliEnv(env, extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const changed = (): void => listeners.forEach((l) => l());
  child.stdout?.on('data', (chunk: Buffer) => ((stdout += chunk.toString('utf8')), changed()));
  child.stderr?.on('data', (chunk: Buffer) => ((stderr += chunk.toString('utf8')), changed()));
  let exitStatus: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
    child.once('error', () => resolve((exitStatus = { code: null, signal: null })));
  });
  const spawned: SpawnedCli = {
    child,
    pid: child.pid ?? -1,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (exitStatus === undefined) child.kill(signal);
    },
    output: () => `${stdout}${stderr}`,
    running: () => exitStatus === undefined,
    waitForOutput: (text, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const done = (error?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve();
        };
        const check = (): void => {
          if (spawned.output().includes(text)) done();
        };
        const timer = setTimeout(
          () => done(new Error(`no "${text}" from \`${args.join(' ')}\` after ${timeoutMs} ms; output:\n${spawned.output()}`)),
          timeoutMs,
        );
        listeners.add(check);
        void exited.then((s) => {
          if (listeners.has(check))
            done(new Error(`\`${args.join(' ')}\` exited (${s.code ?? s.signal}) before printing "${text}"; output:\n${spawned.output()}`));
        });
        check();
      }),
  };
  children.add(spawned);
  void exited.then(() => children.delete(spawned));
  return spawned;
}

/** `bulk-unassign worker` for the env's prefix; resolves once it says it started. */
export async function spawnWorker(env: TestEnv, extraEnv: Readonly<Record<string, string>> = {}): Promise<SpawnedCli> {
  const worker = spawnCli(env, ['worker'], extraEnv);
  await worker.waitForOutput('worker started');
  return worker;
}

/** SIGKILLs every child still running and waits for them to be gone. For afterEach. */
export async function killAllChildren(): Promise<void> {
  const running = [...children];
  for (const c of running) c.kill('SIGKILL');
  await Promise.all(running.map((c) => c.exited));
}
