import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchIngest } from './ingest.js';
import { writeMessyCsv } from './messy-csv.js';
import { openBenchRedis, SIZES } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-'));
const redis = await openBenchRedis();
try {
  const t = Date.now();
  const csv = await writeMessyCsv(join(dir, 'a.csv'), join(dir, 'a.keys'), SIZES.ingestRows);
  console.log('gen', Date.now() - t, csv);
  const r = await benchIngest(redis, csv, console.log);
  console.log(JSON.stringify(r, null, 1));
} finally {
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
}
