/**
 * The report of a batch, built from Redis alone (so `bulk-unassign report <id>` can rebuild it anywhere):
 * summary.json (machines), summary.md (people), failed.csv (original columns + status + error, re-uploadable),
 * rejected.csv (line, column, value, reason + original columns). Memory stays at a page of chats whatever the
 * batch size: failures come in file order from a ZSET in Redis (failure-index.ts).
 */
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';

import type { BatchRecord, BatchStore } from '../store/batch-store.js';
import { csvLine } from './csv-write.js';
import { type Failure, indexFailures } from '../store/failure-index.js';
import type { Keys } from '../store/keys.js';
import { countRestorable, percentileOf, type ResultStore } from '../store/result-store.js';
import type { ScriptedRedis } from '../store/scripts.js';
import type { ResolvedConfig } from '../config/config.js';
import { adaptiveSettingsOf, rateFingerprint, readAdaptiveViews } from '../execution/adaptive-limiter.js';
import { decodeRejectedRow } from '../store/codecs.js';
import type { AuditStore } from '../store/audit-store.js';

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
  /** What the batch does to each chat: `unassign`, or `assign` (a restore and its reruns). */
  readonly action: BatchRecord['action'];
  /** Agents were read right before each unassign call (--capture-assignees). */
  readonly captureAssignees: boolean;
  /**
   * Succeeded chats whose previous agent is known: how many `bulk-unassign restore` would give back. null for a
   * batch that assigns (a restore), or a dry run.
   */
  readonly restorable: number | null;
  readonly failureReasons: readonly { reason: string; count: number }[];
  readonly failuresByClass: Readonly<Record<string, number>>;
  readonly rateLimited: number;
  /**
   * The API rate when the report was written: `fixed` (RATE_LIMIT_MAX) or `auto`, the rate the adaptive limit had
   * reached (`reachedPerSecond`) and what it learned; `achievedPerSecond` is this batch's chats per second.
   * Absent when the report was written without the settings.
   */
  readonly apiRate?: ReportApiRate;
  readonly attempts: { readonly total: number; readonly retries: number };
  readonly latencyMs: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null };
  readonly notes: readonly string[];
  readonly files: Readonly<Record<string, string>>;
  /** Who created the batch (an operator, `user@host`, `schedule <name>`); '' for a batch made before this was kept. */
  readonly createdBy: string;
  /** What was done to the batch and by whom, oldest first (from the audit trail). */
  readonly actions: readonly ReportAction[];
}

export interface ReportAction {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
}

/** Entries read for one batch's report at most: far more than any batch gets (pause/resume many times over). */
const REPORT_ACTIONS_LIMIT = 200;

/**
 * The batch's entries of the audit trail. Reading them means scanning the stream newest first (a filter, not an
 * index), which is cheap enough: the stream is bounded by AUDIT_RETENTION_DAYS, holds one short entry per
 * operator action (failed log-ins are capped per minute), and a report is written once per batch.
 */
export async function batchActions(audit: Pick<AuditStore, 'list'>, batchId: string): Promise<ReportAction[]> {
  const entries = await audit.list({ batchId, limit: REPORT_ACTIONS_LIMIT });
  return entries.map((e) => ({ at: new Date(e.at).toISOString(), actor: e.actor, action: e.action }));
}

export interface ReportApiRate {
  readonly mode: 'fixed' | 'auto';
  /** Fixed: RATE_LIMIT_MAX per second (0 = none); auto: the rate reached (null before any call). */
  readonly reachedPerSecond: number | null;
  readonly learnedPerSecond: number | null;
  readonly achievedPerSecond: number | null;
}

/** The API rate for a batch's summary (one Redis read per learned rate with RATE_LIMIT_MAX=auto). */
async function apiRateOf(redis: ScriptedRedis, keys: Keys, config: ResolvedConfig, batch: BatchRecord): Promise<ReportApiRate> {
  const elapsed = batch.startedAt !== undefined && batch.finishedAt !== undefined ? (batch.finishedAt - batch.startedAt) / 1000 : 0;
  const achievedPerSecond = elapsed > 0 ? Math.round((batch.done / elapsed) * 100) / 100 : null;
  if (!config.rateLimitAuto) {
    const reachedPerSecond = Math.round(((config.rateLimitMax * 1000) / config.rateLimitDurationMs) * 100) / 100;
    return { mode: 'fixed', reachedPerSecond, learnedPerSecond: null, achievedPerSecond };
  }
  const views = await readAdaptiveViews(redis, keys, adaptiveSettingsOf(config));
  const mine = config.apiKey === undefined ? undefined : rateFingerprint(config.baseUrl, config.apiKey);
  const view = views.find((v) => v.fingerprint === mine) ?? views[0];
  return { mode: 'auto', reachedPerSecond: view?.currentPerSecond ?? null, learnedPerSecond: view?.learnedPerSecond ?? null, achievedPerSecond };
}

/**
 * How a batch's note begins when its report could not be written when it finished. Said of that moment: the note
 * stays, and appears in the report that `report <batchId>` writes later.
 */
export const REPORT_NOT_WRITTEN = 'report not written when the batch finished';

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** Columns of failed.csv: the source's own, then status + error (suffixed if the source already had them). */
export function failedColumns(header: readonly string[]): { header: string[]; status: string; error: string } {
  const taken = new Set(header);
  const free = (name: string): string => (taken.has(name) ? free(`unassign_${name}`) : name);
  const status = free('status');
  const error = free('error');
  return { header: [...header, status, error], status, error };
}

/**
 * Writes a file whole or not at all: into a temporary file of its own, renamed over the target. The temporary
 * name is unique per write, so two processes rebuilding the same report (a rerun and a finalize, two operators)
 * never write into, or rename away, each other's half-written file; the last rename wins with a complete file.
 */
async function writeLines(path: string, lines: AsyncIterable<string> | Iterable<string>): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const out = createWriteStream(tmp);
    const failed = new Promise<never>((_, reject) => out.once('error', reject));
    failed.catch(() => undefined); // raced below; an error after the race is settled must not go unhandled
    const written = (async () => {
      for await (const line of lines) if (!out.write(line)) await once(out, 'drain');
      out.end();
      await once(out, 'finish');
    })();
    await Promise.race([written, failed]);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** Characters a Markdown renderer would take as HTML: batch names, sources and API messages are not trusted. */
export function escapeMarkdownText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const cell = (text: string): string =>
  escapeMarkdownText(text)
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');

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
    for (const [i, text] of (await redis.lrange(key, start, start + 999)).entries()) {
      const row = decodeRejectedRow(text, `${key}[${start + i}]`);
      yield csvLine([String(row.line), row.column ?? '', row.raw, row.reason, ...batch.header.map((h) => row.cells[h] ?? '')]);
    }
  }
}

export async function latencyPercentiles(redis: ScriptedRedis, keys: Keys, batchId: string): Promise<ReportSummary['latencyMs']> {
  const raw = await redis.hgetall(keys.batch(batchId).latency);
  const histogram = new Map(Object.entries(raw).map(([b, n]) => [Number(b), Number(n)]));
  return { p50: percentileOf(histogram, 50), p95: percentileOf(histogram, 95), p99: percentileOf(histogram, 99) };
}

export function summarise(
  batch: BatchRecord,
  failuresByClass: Readonly<Record<string, number>>,
  latencyMs: ReportSummary['latencyMs'],
  files: Record<string, string>,
  actions: readonly ReportAction[] = [],
): ReportSummary {
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
    action: batch.action,
    captureAssignees: batch.captureAssignees,
    restorable: batch.action === 'unassign' && !batch.dryRun ? (batch.restorable ?? 0) : null,
    failureReasons: Object.entries(batch.reasons)
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
    failuresByClass,
    rateLimited: batch.rateLimited,
    attempts: { total: batch.attempts, retries: Math.max(0, batch.attempts - terminalCalls) },
    latencyMs,
    notes: batch.notes,
    files,
    createdBy: batch.createdBy,
    actions,
  };
}

/** What the report says about undoing the batch (restorable chats), or about a restore's chats left alone. */
function restoreLines(s: ReportSummary): string[] {
  if (s.action === 'assign') {
    const skipped = s.counts.skipped;
    return [
      `Restore: ${s.counts.succeeded} chat(s) assigned back to their previous agent` +
        (skipped > 0 ? `; ${skipped} left alone (assigned to an agent since, or not called)` : '') +
        '. A restore cannot be restored.',
      '',
    ];
  }
  if (s.restorable === null) return [];
  const skipped = s.counts.skipped > 0 ? `${s.counts.skipped} chat(s) skipped (no agent to take away). ` : '';
  return [
    s.restorable > 0
      ? `${skipped}**Restorable:** ${s.restorable} of ${s.counts.succeeded} unassigned chat(s) have a known previous agent: \`bulk-unassign restore ${s.batchId}\` gives them back.`
      : `${skipped}**Restorable:** none (no previous agent known: the source had no agent column, and the batch ran without --capture-assignees).`,
    '',
  ];
}

export function renderMarkdown(s: ReportSummary): string {
  const c = s.counts;
  const text = escapeMarkdownText;
  const lines = [
    `# Batch ${s.batchId} — ${text(s.name)}`,
    '',
    `**Status:** ${s.status}${s.reason ? ` — ${text(s.reason)}` : ''}${s.dryRun ? ' (dry run: no API calls made)' : ''}`,
    `**Source:** ${text(s.source)} (sha256 ${s.sha256.slice(0, 12) || 'n/a'})${s.parent ? ` · rerun of ${s.parent}` : ''}`,
    ...(s.createdBy ? [`**Created by:** ${text(s.createdBy)} at ${s.createdAt}`] : []),
    `**Started:** ${s.startedAt ?? '—'} · **Finished:** ${s.finishedAt ?? '—'} · **Duration:** ${s.durationMs === null ? '—' : `${(s.durationMs / 1000).toFixed(1)} s`}`,
    '',
    '| rows | valid | rejected | duplicates | succeeded | failed | cancelled | skipped |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${c.rows} | ${c.valid} | ${c.rejected} | ${c.duplicates} | ${c.succeeded} | ${c.failed} | ${c.cancelled} | ${c.skipped} |`,
    '',
    ...restoreLines(s),
    `API: ${s.attempts.total + s.rateLimited} calls (${s.attempts.total} attempts of which ${s.attempts.retries} retries, plus ${s.rateLimited} answered 429), latency p50 ${s.latencyMs.p50 ?? '—'} ms · p95 ${s.latencyMs.p95 ?? '—'} ms · p99 ${s.latencyMs.p99 ?? '—'} ms`,
    '',
  ];
  if (s.apiRate?.mode === 'auto') {
    lines.push(
      `Rate limit: auto, reached ${s.apiRate.reachedPerSecond ?? '—'}/s, learned ${s.apiRate.learnedPerSecond ?? '—'}/s; this batch ${s.apiRate.achievedPerSecond ?? '—'} chats/s`,
      '',
    );
  }
  if (s.failureReasons.length > 0) {
    lines.push('## Failure reasons', '', '| chats | reason |', '|---:|---|');
    for (const r of s.failureReasons) lines.push(`| ${r.count} | ${cell(r.reason)} |`);
    lines.push('', `Failed chats are in \`failed.csv\` (re-uploadable as is); \`bulk-unassign rerun ${s.batchId}\` retries the ones a rerun can fix.`, '');
  }
  if (c.rejected > 0) lines.push(`${c.rejected} row(s) could not be read as a chat: see \`rejected.csv\`.`, '');
  for (const note of s.notes) lines.push(`> ${text(note).replace(/[\r\n]+/g, ' ')}`, '');
  if (s.children.length > 0) lines.push(`Reruns and restores of this batch: ${s.children.join(', ')}`, '');
  if (s.actions.length > 0) {
    lines.push('## Actions', '', '| when | who | what |', '|---|---|---|');
    for (const a of s.actions) lines.push(`| ${a.at} | ${cell(a.actor)} | ${a.action} |`);
    lines.push('');
  }
  return lines.join('\n');
}

/** Writes the four report files for a batch into `<reportsDir>/<batchId>/` and returns the summary. */
export async function writeReport(
  deps: {
    redis: ScriptedRedis;
    keys: Keys;
    results: ResultStore;
    audit: Pick<AuditStore, 'list'>;
    batches: Pick<BatchStore, 'update'>;
    config?: ResolvedConfig;
  },
  batch: BatchRecord,
  reportsDir: string,
): Promise<ReportSummary> {
  const dir = join(reportsDir, batch.id);
  await mkdir(dir, { recursive: true });
  const files = {
    summaryJson: join(dir, 'summary.json'),
    summaryMd: join(dir, 'summary.md'),
    failedCsv: join(dir, 'failed.csv'),
    rejectedCsv: join(dir, 'rejected.csv'),
  };
  const failuresByClass: Record<string, number> = {};
  const failures = await indexFailures(deps, batch.id);
  try {
    await writeLines(files.failedCsv, failedCsv(batch, failures.inFileOrder(), failuresByClass));
  } finally {
    await failures.drop();
  }
  await writeLines(files.rejectedCsv, rejectedCsv(deps.redis, deps.keys, batch));
  // Kept on the record too: the console's Restore confirmation and `status` show it without a scan.
  let restorable: number | undefined;
  if (batch.action === 'unassign' && !batch.dryRun) {
    restorable = await countRestorable(deps.results, batch.id);
    await deps.batches.update(batch.id, { restorable });
  }
  const summarised = summarise(
    restorable === undefined ? batch : { ...batch, restorable },
    failuresByClass,
    await latencyPercentiles(deps.redis, deps.keys, batch.id),
    files,
    await batchActions(deps.audit, batch.id),
  );
  const summary = deps.config ? { ...summarised, apiRate: await apiRateOf(deps.redis, deps.keys, deps.config, batch) } : summarised;
  await writeLines(files.summaryMd, [renderMarkdown(summary)]);
  await writeLines(files.summaryJson, [`${JSON.stringify(summary, null, 2)}\n`]);
  return summary;
}
