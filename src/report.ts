/**
 * The report of a batch, built from Redis alone (so `bulk-unassign report <id>` can rebuild it anywhere):
 * summary.json (machines), summary.md (people), failed.csv (original columns + status + error, re-uploadable),
 * rejected.csv (line, column, value, reason + original columns). Memory stays at a page of chats whatever the
 * batch size: results are streamed with HSCAN, and failures are put into file order by a ZSET in Redis.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';

import type { BatchRecord } from './batch-store.js';
import { HOUR } from './config.js';
import { csvLine } from './csv-write.js';
import type { Keys } from './keys.js';
import { type ChatResult, decodeResult, percentileOf, type ResultStore } from './result-store.js';
import type { ScriptedRedis } from './scripts.js';
import { chatFromKey, type RejectedRow } from './types.js';

export interface ReportSummary {
  readonly batchId: string;
  readonly name: string;
  readonly kind: string;
  readonly source: string;
  readonly sha256: string;
  readonly parent: string | null;
  readonly children: readonly string[];
  readonly status: string;
  readonly reason: string;
  readonly dryRun: boolean;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly durationMs: number | null;
  readonly counts: BatchRecord['counts'];
  readonly failureReasons: readonly { reason: string; count: number }[];
  readonly failuresByClass: Readonly<Record<string, number>>;
  readonly rateLimited: number;
  readonly attempts: { readonly total: number; readonly retries: number };
  readonly latencyMs: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null };
  readonly notes: readonly string[];
  readonly files: Readonly<Record<string, string>>;
}

interface StoredChat {
  line: number;
  cells: Record<string, string>;
}

interface Failure {
  key: string;
  result: ChatResult;
  input: StoredChat;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Cells for a chat that has no stored row (rerun and nightly batches build rows from chat keys). */
function syntheticCells(chatKey: string): Record<string, string> {
  const chat = chatFromKey(chatKey);
  return chat.kind === 'group' ? { groupId: chat.groupId } : { customerPhoneNumber: chat.customerPhoneNumber, wabaNumber: chat.wabaNumber };
}

/** Failed chats handled per Redis round trip while writing failed.csv. */
const REPORT_PAGE = 1000;
/** How long a report run's sort index outlives a writer that died before deleting it. */
const REPORT_ORDER_TTL_MS = HOUR;

function storedChat(key: string, json: string | null | undefined): StoredChat {
  return json ? (JSON.parse(json) as StoredChat) : { line: 0, cells: syntheticCells(key) };
}

/**
 * Pass 1: every failed chat into the `order` ZSET, scored by its input line, a page at a time. (A 100k-failure
 * batch held in memory to be sorted took ~110 MB; a million failures, a bad WABA number on every row, over a GB.)
 * HSCAN may repeat an entry: ZADD keeps each chat once.
 */
async function indexFailures(redis: ScriptedRedis, keys: Keys, results: ResultStore, batchId: string, order: string): Promise<void> {
  const chats = keys.batch(batchId).chats;
  let page: string[] = [];
  const flush = async (): Promise<void> => {
    if (page.length === 0) return;
    const inputs = await redis.hmget(chats, ...page);
    const scored = page.flatMap((key, i) => [storedChat(key, inputs[i]).line, key]);
    await redis.multi().zadd(order, ...scored).pexpire(order, REPORT_ORDER_TTL_MS).exec();
    page = [];
  };
  for await (const [key, result] of results.scan(batchId)) {
    if (result.state !== 'failed') continue;
    page.push(key);
    if (page.length >= REPORT_PAGE) await flush();
  }
  await flush();
}

/** The failures of these chats, in this order, a page of results and inputs per round trip. */
async function* failuresOf(redis: ScriptedRedis, keys: Keys, batchId: string, ordered: readonly string[]): AsyncIterable<Failure> {
  const k = keys.batch(batchId);
  for (let i = 0; i < ordered.length; i += REPORT_PAGE) {
    const page = ordered.slice(i, i + REPORT_PAGE);
    const [results, inputs] = await Promise.all([redis.hmget(k.results, ...page), redis.hmget(k.chats, ...page)]);
    for (const [j, key] of page.entries()) {
      const text = results[j];
      if (text) yield { key, result: decodeResult(text), input: storedChat(key, inputs[j]) };
    }
  }
}

/**
 * Pass 2: the failures in file order: by line, then chat key (localeCompare, within one line: a rerun's or
 * nightly batch's chats all have line 0). Only the current line's chats and one page wait in memory.
 */
async function* failuresInFileOrder(redis: ScriptedRedis, keys: Keys, batchId: string, order: string): AsyncIterable<Failure> {
  let ready: string[] = [];
  let sameLine: string[] = [];
  let line = NaN;
  const closeLine = (): void => {
    ready.push(...sameLine.sort((a, b) => a.localeCompare(b)));
    sameLine = [];
  };
  for (let start = 0; ; start += REPORT_PAGE) {
    const flat = await redis.zrange(order, start, start + REPORT_PAGE - 1, 'WITHSCORES');
    for (let i = 0; i < flat.length; i += 2) {
      const score = Number(flat[i + 1]);
      if (score !== line) closeLine();
      line = score;
      sameLine.push(flat[i] as string);
    }
    if (ready.length >= REPORT_PAGE) {
      yield* failuresOf(redis, keys, batchId, ready);
      ready = [];
    }
    if (flat.length < REPORT_PAGE * 2) break;
  }
  closeLine();
  yield* failuresOf(redis, keys, batchId, ready);
}

/** Columns of failed.csv: the source's own, then status + error (suffixed if the source already had them). */
export function failedColumns(header: readonly string[]): { header: string[]; status: string; error: string } {
  const taken = new Set(header);
  const free = (name: string): string => (taken.has(name) ? free(`unassign_${name}`) : name);
  const status = free('status');
  const error = free('error');
  return { header: [...header, status, error], status, error };
}

async function writeLines(path: string, lines: AsyncIterable<string> | Iterable<string>): Promise<void> {
  const tmp = `${path}.tmp`;
  const out = createWriteStream(tmp);
  for await (const line of lines) if (!out.write(line)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  await rename(tmp, path);
}

/** failed.csv, line by line; tallies each failure's class into `byClass` on the way. */
async function* failedCsv(batch: BatchRecord, failures: AsyncIterable<Failure>, byClass: Record<string, number>): AsyncIterable<string> {
  const header = batch.header.length > 0 ? batch.header : ['customerPhoneNumber', 'wabaNumber', 'groupId'];
  const cols = failedColumns(header);
  yield csvLine(cols.header);
  for await (const f of failures) {
    const cls = f.result.failureClass ?? 'unknown';
    byClass[cls] = (byClass[cls] ?? 0) + 1;
    const cells = header.map((h) => f.input.cells[h] ?? '');
    yield csvLine([...cells, f.result.httpStatus ? String(f.result.httpStatus) : 'no response', f.result.reason]);
  }
}

async function* rejectedCsv(redis: ScriptedRedis, keys: Keys, batch: BatchRecord): AsyncIterable<string> {
  yield csvLine(['line', 'column', 'value', 'reason', ...batch.header]);
  const key = keys.batch(batch.id).rejected;
  const total = await redis.llen(key);
  for (let start = 0; start < total; start += 1000) {
    for (const text of await redis.lrange(key, start, start + 999)) {
      const row = JSON.parse(text) as RejectedRow;
      yield csvLine([String(row.line), row.column ?? '', row.raw, row.reason, ...batch.header.map((h) => row.cells[h] ?? '')]);
    }
  }
}

export async function latencyPercentiles(redis: ScriptedRedis, keys: Keys, batchId: string): Promise<ReportSummary['latencyMs']> {
  const raw = await redis.hgetall(keys.batch(batchId).latency);
  const histogram = new Map(Object.entries(raw).map(([b, n]) => [Number(b), Number(n)]));
  return { p50: percentileOf(histogram, 50), p95: percentileOf(histogram, 95), p99: percentileOf(histogram, 99) };
}

export function summarise(batch: BatchRecord, failuresByClass: Readonly<Record<string, number>>, latencyMs: ReportSummary['latencyMs'], files: Record<string, string>): ReportSummary {
  const terminalCalls = batch.counts.succeeded + batch.counts.failed;
  return {
    batchId: batch.id,
    name: batch.name,
    kind: batch.kind,
    source: batch.source,
    sha256: batch.sha256,
    parent: batch.parent ?? null,
    children: batch.children,
    status: batch.status,
    reason: batch.reason,
    dryRun: batch.dryRun,
    createdAt: new Date(batch.createdAt).toISOString(),
    startedAt: iso(batch.startedAt),
    finishedAt: iso(batch.finishedAt),
    durationMs: batch.startedAt !== undefined && batch.finishedAt !== undefined ? batch.finishedAt - batch.startedAt : null,
    counts: batch.counts,
    failureReasons: Object.entries(batch.reasons)
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
    failuresByClass,
    rateLimited: batch.rateLimited,
    attempts: { total: batch.attempts, retries: Math.max(0, batch.attempts - terminalCalls) },
    latencyMs,
    notes: batch.notes,
    files,
  };
}

export function renderMarkdown(s: ReportSummary): string {
  const c = s.counts;
  const lines = [
    `# Batch ${s.batchId} — ${s.name}`,
    '',
    `**Status:** ${s.status}${s.reason ? ` — ${s.reason}` : ''}${s.dryRun ? ' (dry run: no API calls made)' : ''}`,
    `**Source:** ${s.source} (sha256 ${s.sha256.slice(0, 12) || 'n/a'})${s.parent ? ` · rerun of ${s.parent}` : ''}`,
    `**Started:** ${s.startedAt ?? '—'} · **Finished:** ${s.finishedAt ?? '—'} · **Duration:** ${s.durationMs === null ? '—' : `${(s.durationMs / 1000).toFixed(1)} s`}`,
    '',
    '| rows | valid | rejected | duplicates | succeeded | failed | cancelled |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${c.rows} | ${c.valid} | ${c.rejected} | ${c.duplicates} | ${c.succeeded} | ${c.failed} | ${c.cancelled} |`,
    '',
    `API: ${s.attempts.total} calls (${s.attempts.retries} retries), ${s.rateLimited} answered 429, latency p50 ${s.latencyMs.p50 ?? '—'} ms · p95 ${s.latencyMs.p95 ?? '—'} ms · p99 ${s.latencyMs.p99 ?? '—'} ms`,
    '',
  ];
  if (s.failureReasons.length > 0) {
    lines.push('## Failure reasons', '', '| chats | reason |', '|---:|---|');
    for (const r of s.failureReasons) lines.push(`| ${r.count} | ${r.reason.replace(/\|/g, '\\|')} |`);
    lines.push('', `Failed chats are in \`failed.csv\` (re-uploadable as is); \`bulk-unassign rerun ${s.batchId}\` retries the ones a rerun can fix.`, '');
  }
  if (c.rejected > 0) lines.push(`${c.rejected} row(s) could not be read as a chat: see \`rejected.csv\`.`, '');
  for (const note of s.notes) lines.push(`> ${note}`, '');
  if (s.children.length > 0) lines.push(`Reruns of this batch: ${s.children.join(', ')}`, '');
  return lines.join('\n');
}

/** Writes the four report files for a batch into `<reportsDir>/<batchId>/` and returns the summary. */
export async function writeReport(deps: { redis: ScriptedRedis; keys: Keys; results: ResultStore }, batch: BatchRecord, reportsDir: string): Promise<ReportSummary> {
  const dir = join(reportsDir, batch.id);
  await mkdir(dir, { recursive: true });
  const files = { summaryJson: join(dir, 'summary.json'), summaryMd: join(dir, 'summary.md'), failedCsv: join(dir, 'failed.csv'), rejectedCsv: join(dir, 'rejected.csv') };
  const order = deps.keys.reportOrder(batch.id, randomBytes(4).toString('hex'));
  const failuresByClass: Record<string, number> = {};
  try {
    await indexFailures(deps.redis, deps.keys, deps.results, batch.id, order);
    await writeLines(files.failedCsv, failedCsv(batch, failuresInFileOrder(deps.redis, deps.keys, batch.id, order), failuresByClass));
  } finally {
    await deps.redis.del(order);
  }
  await writeLines(files.rejectedCsv, rejectedCsv(deps.redis, deps.keys, batch));
  const summary = summarise(batch, failuresByClass, await latencyPercentiles(deps.redis, deps.keys, batch.id), files);
  await writeFile(files.summaryMd, renderMarkdown(summary));
  await writeFile(`${files.summaryJson}.tmp`, `${JSON.stringify(summary, null, 2)}\n`);
  await rename(`${files.summaryJson}.tmp`, files.summaryJson);
  return summary;
}
