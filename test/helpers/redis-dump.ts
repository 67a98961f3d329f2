/**
 * Reading back everything a test left under a key prefix: key names, readable values of every type, and the raw
 * DUMP bytes (so nothing stored in an unexpected encoding escapes a grep).
 */
import type { Cluster, Redis } from 'ioredis';

/** Every key under `{prefix}` (SCAN, never KEYS). */
export async function keysUnder(redis: Redis | Cluster, prefix: string): Promise<string[]> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) out.add(k);
  } while (cursor !== '0');
  return [...out].sort();
}

/** One key's value as text, whatever its type. */
async function readable(redis: Redis | Cluster, key: string): Promise<string> {
  const type = await redis.type(key);
  switch (type) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await redis.hgetall(key));
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'set':
      return JSON.stringify(await redis.smembers(key));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES'));
    case 'stream':
      return JSON.stringify(await redis.xrange(key, '-', '+'));
    default:
      return '';
  }
}

/** Key names, readable values and DUMP bytes (latin1) of every key under the prefix, as one searchable text. */
export async function dumpPrefix(redis: Redis | Cluster, prefix: string): Promise<{ text: string; keys: string[] }> {
  const keys = await keysUnder(redis, prefix);
  const parts: string[] = [];
  for (const key of keys) {
    const raw = await redis.dumpBuffer(key);
    parts.push(key, await readable(redis, key), raw ? raw.toString('latin1') : '');
  }
  return { text: parts.join('\n'), keys };
}
