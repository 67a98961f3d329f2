/**
 * A private `redis-server` for newcomers: the demo and the tests start one on a free port in a temp dir when
 * nothing answers at REDIS_URL, and stop it afterwards. Persistence (AOF) is on so restart tests are real.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { RedisUnavailableError } from '../domain/errors.js';
import { redisAnswers } from '../store/redis.js';

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Kills the server (SIGKILL when `hard`), keeping its data dir, and waits for it to exit. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and dir (AOF replays what was written); stops it first if it is running. */
  restart(): Promise<void>;
  /** Stops it and deletes its data. */
  close(): Promise<void>;
}

/** The redis-server binary on PATH, or undefined. */
export function findRedisServer(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface PrivateRedisOptions {
  readonly port?: number;
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. */
  readonly args?: readonly string[];
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const binary = findRedisServer();
  if (!binary) {
    throw new RedisUnavailableError(
      'no Redis answers at REDIS_URL and no `redis-server` binary was found. Install one ' +
        '(`apt-get install redis-server`) or start one with `docker compose up -d redis`.',
    );
  }
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        '--protected-mode',
        'no',
        ...(options.args ?? []),
      ],
      { stdio: 'ignore', detached: false },
    );
    child.unref();
    await waitFor(() => redisAnswers(url, 300), 10_000, `redis-server on port ${port}`);
  };
  const stop = async (hard = false): Promise<void> => {
    const running = child;
    // A process killed by a signal has exitCode null and signalCode set: check both, or a second stop (e.g.
    // restart() or close() after stop(true)) would wait forever for an 'exit' that already happened.
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.ref(); // keep the event loop alive until it has exited (it is unref'd while it runs)
    running.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await start();
  return {
    url,
    port,
    dir,
    stop,
    // Stop first: starting over a running server would spawn a second one that cannot bind, and `stop`/`close`
    // would then only see that dead one and leave the real server running.
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
