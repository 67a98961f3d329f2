/**
 * Just enough of a Redis connection for `writeReport` (src/report/report.ts) on a batch WITHOUT failed chats:
 * the rejected-rows list (LLEN/LRANGE), the latency histogram (HGETALL), and the failure index, which stays
 * empty (ZCARD 0, ZRANGE nothing, DEL). A batch with failed chats needs the real failure index (a ZSET built
 * with MULTI): that path is covered by the integration tier (ops, report-order), and this fake refuses it.
 */
import type { ScriptedRedis } from '../../../src/store/scripts.js';

export interface ReportRedis {
  readonly redis: ScriptedRedis;
  readonly lists: Map<string, string[]>;
  readonly hashes: Map<string, Record<string, string>>;
  /** Commands called, by name. */
  readonly commands: string[];
}

export function reportRedis(): ReportRedis {
  const lists = new Map<string, string[]>();
  const hashes = new Map<string, Record<string, string>>();
  const commands: string[] = [];
  const fake = {
    llen: async (key: string) => (commands.push('llen'), lists.get(key)?.length ?? 0),
    // Redis LRANGE: both ends inclusive.
    lrange: async (key: string, start: number, stop: number) => (commands.push('lrange'), (lists.get(key) ?? []).slice(start, stop + 1)),
    hgetall: async (key: string) => (commands.push('hgetall'), { ...(hashes.get(key) ?? {}) }),
    zcard: async () => (commands.push('zcard'), 0),
    zrange: async () => (commands.push('zrange'), []),
    del: async () => (commands.push('del'), 1),
    hmget: async () => {
      throw new Error('reportRedis: a batch with failed chats needs real Redis (integration tier)');
    },
    multi: () => {
      throw new Error('reportRedis: a batch with failed chats needs real Redis (integration tier)');
    },
  };
  return { redis: fake as unknown as ScriptedRedis, lists, hashes, commands };
}
