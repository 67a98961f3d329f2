/**
 * Redis connections. Workers and the CLI use `maxRetriesPerRequest: null` (BullMQ requires it for workers,
 * and it is what makes a Redis restart survivable: commands wait for the reconnect instead of failing).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

import { RedisUnavailableError } from '../domain/errors.js';
import { defineScripts, type ScriptedRedis } from './scripts.js';

export interface ConnectOptions {
  /** `url` is one node of a Redis Cluster (REDIS_CLUSTER): connect to the whole cluster through it. */
  readonly cluster?: boolean;
  /**
   * ioredis auto-pipelining: every command issued in one event-loop turn goes out in one write. Only for the
   * connection that carries our own keys (claim / record / pacer / staging): with an instant API those are two
   * writes per chat, and each unbatched write is a syscall of its own (BENCHMARKS.md has what that costs).
   * Never on a connection BullMQ uses: its users reported lost job data and "not in the active list" errors with it.
   */
  readonly autoPipelining?: boolean;
}

/** Back off up to 2 s between reconnect attempts; never give up (a restarting Redis comes back). */
const reconnectDelay = (times: number): number => Math.min(times * 100, 2000);

/**
 * A Cluster seeded from one node's URL. Credentials and TLS go into `redisOptions` so they apply to every node
 * the cluster reports, not only the seed.
 */
function connectCluster(url: string, options: RedisOptions): Cluster {
  const parsed = new URL(url);
  return new Cluster([{ host: parsed.hostname, port: Number(parsed.port || 6379) }], {
    redisOptions: {
      ...options,
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    },
    clusterRetryStrategy: reconnectDelay,
  });
}

export function connectRedis(url: string, name = 'bulk-unassign', connect: ConnectOptions = {}): ScriptedRedis {
  const options: RedisOptions = {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy: reconnectDelay,
    ...(connect.autoPipelining ? { enableAutoPipelining: true } : {}),
  };
  const redis = connect.cluster ? connectCluster(url, options) : new Redis(url, options);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  redis.on('error', () => undefined);
  return defineScripts(redis);
}

/** Answers whether something at `url` replies to PING within `timeoutMs`. Never throws. */
export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Fails fast with an actionable message when Redis is not there (instead of hanging on reconnects). */
export async function assertRedisReachable(url: string): Promise<void> {
  if (await redisAnswers(url)) return;
  throw new RedisUnavailableError(
    `cannot reach Redis at ${redactUrl(url)}. Start one with \`docker compose up -d redis\`, ` +
      '`redis-server --port 6379 --daemonize yes` (Debian/Ubuntu: `apt-get install redis-server`), or set REDIS_URL.',
  );
}

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}
