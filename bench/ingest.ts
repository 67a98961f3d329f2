/**
 * Scenario "ingest": rows/s through openCsvSource + ingest() against raw BullMQ addBulk of the same jobs, each
 * side in its own process so peak RSS is its own. Also checks that ingest counted the file exactly.
 */
import type { MessyCsv } from './messy-csv.js';
import { type BenchRedis, type ResultRow, runSide, uniquePrefix } from './support.js';

interface IngestOurs {
  ms: number;
  stageMs: number;
  counts: { rows: number; valid: number; rejected: number; duplicates: number };
  jobs: number;
  peakRssMb: number;
}
interface IngestRaw {
  ms: number;
  jobs: number;
  queued: number;
  peakRssMb: number;
}

export async function benchIngest(redis: BenchRedis, csv: MessyCsv, log: (s: string) => void): Promise<{ rows: ResultRow[]; detail: object }> {
  const oursPrefix = uniquePrefix('ingest');
  const rawPrefix = uniquePrefix('ingest-raw');
  let ours: IngestOurs;
  let raw: IngestRaw;
  try {
    log(`ingest: ours (${csv.rows} rows)…`);
    ours = await runSide<IngestOurs>('ingest-ours', { redisUrl: redis.url, prefix: oursPrefix, csv: csv.file, keysFile: csv.keysFile });
    await redis.clean(oursPrefix);
    log(`ingest: raw addBulk (${csv.valid} jobs)…`);
    raw = await runSide<IngestRaw>('ingest-raw', { redisUrl: redis.url, prefix: rawPrefix, csv: csv.file, keysFile: csv.keysFile });
  } finally {
    await redis.clean(oursPrefix);
    await redis.clean(rawPrefix);
  }
  const expected = { rows: csv.rows, valid: csv.valid, rejected: csv.rejected, duplicates: csv.duplicates };
  const got = { rows: ours.counts.rows, valid: ours.counts.valid, rejected: ours.counts.rejected, duplicates: ours.counts.duplicates };
  const exact = JSON.stringify(got) === JSON.stringify(expected) && ours.jobs === csv.valid && raw.jobs === csv.valid;
  const oursRate = csv.rows / (ours.ms / 1000);
  const rawRate = csv.rows / (raw.ms / 1000);
  const rows: ResultRow[] = [
    {
      scenario: `ingest ${csv.rows.toLocaleString('en')}-row messy CSV`,
      unit: 'rows/s',
      ours: oursRate,
      baseline: rawRate,
      ratio: oursRate / rawRate,
      target: '≥ 0.60 × raw addBulk (2 cores)',
      pass: exact && oursRate / rawRate >= 0.6,
      note: exact
        ? `read+stage ${(ours.stageMs / 1000).toFixed(1)} s, enqueue ${((ours.ms - ours.stageMs) / 1000).toFixed(1)} s`
        : `COUNTS WRONG: ${JSON.stringify({ got, jobs: ours.jobs, rawJobs: raw.jobs, expected })}`,
    },
    {
      scenario: `ingest: a ${csv.rows.toLocaleString('en')}-row file, upload to running batch`,
      unit: 's',
      ours: ours.ms / 1000,
      baseline: null,
      ratio: null,
      target: '≤ 60 s per 1,000,000 rows',
      pass: exact && ours.ms <= (60_000 * csv.rows) / 1_000_000,
    },
    {
      scenario: 'ingest peak RSS',
      unit: 'MB',
      ours: ours.peakRssMb,
      baseline: raw.peakRssMb,
      ratio: ours.peakRssMb / raw.peakRssMb,
      target: '< 200 MB',
      pass: ours.peakRssMb < 200,
    },
  ];
  return { rows, detail: { ours, raw, expected } };
}
