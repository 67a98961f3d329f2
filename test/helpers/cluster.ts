/**
 * A real Redis Cluster on loopback for tests: N masters (`redis-server --cluster-enabled yes`, each on a free
 * port in its own temp dir, via startPrivateRedis), joined with `redis-cli --cluster create`, no replicas.
 * `close()` stops every node and deletes its data.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

import { Redis } from 'ioredis';

import { type PrivateRedis, startPrivateRedis } from '../../src/devtools/redis-server.js';
import { eventually } from './eventually.js';

const run = promisify(execFile);

/** The redis-cli binary on PATH, or undefined (the cluster test skips without it). */
export function findRedisCli(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

export interface TestCluster {
  /** redis://127.0.0.1:<port> of each master: any one of them is a valid REDIS_URL with REDIS_CLUSTER=true. */
  readonly urls: readonly string[];
  close(): Promise<void>;
}

async function clusterState(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const info = String(await redis.call('CLUSTER', 'INFO'));
    return /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    return 'unreachable';
  } finally {
    redis.disconnect();
  }
}

/** The node (of `urls`) that serves `key`'s slot: the only one that answers instead of redirecting (MOVED). */
export async function slotOwner(urls: readonly string[], key: string): Promise<string> {
  for (const url of urls) {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      await redis.exists(key);
      return url;
    } catch (error) {
      if (!String(error).includes('MOVED')) throw error;
    } finally {
      redis.disconnect();
    }
  }
  throw new Error(`no node of ${urls.join(', ')} serves ${key}`);
}

export async function startRedisCluster(masters = 3): Promise<TestCluster> {
  const cli = findRedisCli();
  if (!cli) throw new Error('redis-cli not found');
  const nodes: PrivateRedis[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.close()));
  };
  try {
    for (let i = 0; i < masters; i += 1) {
      nodes.push(
        await startPrivateRedis({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000', '--appendonly', 'no'],
        }),
      );
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    await run(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // Slots are assigned at once, but each node reports `ok` only after the gossip has reached it.
    let states: string[] = [];
    await eventually(
      async () => {
        states = await Promise.all(nodes.map((n) => clusterState(n.url)));
        return states.every((s) => s === 'ok');
      },
      { timeoutMs: 20_000, intervalMs: 100, message: () => `cluster_state ok on every node (${states.join(', ')})` },
    );
    return { urls: nodes.map((n) => n.url), close };
  } catch (error) {
    await close();
    throw error;
  }
}
