/**
 * Scenario "Redis footprint": bytes of Redis memory per finished chat once a batch is done (report written,
 * retention TTL set). Two views: INFO used_memory before ingest vs after finish (everything the batch left,
 * BullMQ's own keys included), and MEMORY USAGE of the keys themselves (the batch's keys, and all under the prefix).
 */
import type { MockApi } from '../src/devtools/mock-api.js';
import type { MessyCsv } from './messy-csv.js';
import { type BenchRedis, type ResultRow, runSide, SIZES, uniquePrefix } from './support.js';
import { type ServerView, serverView } from './throughput.js';

interface FootprintRun {
  ms: number;
  status: string;
  counts: { valid: number; succeeded: number; rejected: number };
  memory: { before: number; after: number; allKeys: number; batchKeys: number; keys: number };
}

export async function benchFootprint(redis: BenchRedis, api: MockApi, csv: MessyCsv, log: (s: string) => void): Promise<{ rows: ResultRow[]; detail: object }> {
  api.setRateLimit(null);
  api.reset();
  const prefix = uniquePrefix('footprint');
  log(`footprint: ${csv.valid} chats, then Redis memory…`);
  let run: FootprintRun;
  let server: ServerView;
  try {
    run = await runSide<FootprintRun>('work-ours', {
      redisUrl: redis.url,
      prefix,
      apiUrl: api.url,
      csv: csv.file,
      keysFile: csv.keysFile,
      concurrency: SIZES.concurrency,
      rateLimitMax: 0,
      measureMemory: true,
    });
    server = serverView(api);
  } finally {
    await redis.clean(prefix);
  }
  const chats = run.counts.valid;
  const exact = run.status === 'finished' && run.counts.succeeded === chats && server.distinct === chats;
  const delta = (run.memory.after - run.memory.before) / chats;
  const shared = redis.isPrivate ? '' : ' (shared REDIS_URL: other clients move used_memory too)';
  return {
    rows: [
      {
        scenario: `Redis footprint after a ${chats.toLocaleString('en')}-chat batch: used_memory delta`,
        unit: 'B/chat',
        ours: delta,
        baseline: null,
        ratio: null,
        target: '≤ 300 B',
        pass: exact && delta <= 300,
        ...(exact ? (shared ? { note: shared.trim() } : {}) : { note: `batch ${run.status}, succeeded ${run.counts.succeeded}/${chats}` }),
      },
      {
        scenario: 'Redis footprint: MEMORY USAGE of the batch keys',
        unit: 'B/chat',
        ours: run.memory.batchKeys / chats,
        baseline: null,
        ratio: null,
        target: 'for reference',
        pass: null,
        note: `all ${run.memory.keys} keys under the prefix: ${(run.memory.allKeys / chats).toFixed(0)} B/chat; ${run.counts.rejected} rejected rows kept for rejected.csv`,
      },
    ],
    detail: { run, server },
  };
}
