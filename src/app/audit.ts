/**
 * Reading the audit trail, shared by `bulk-unassign audit` and the console's /api/audit: the filters (checked
 * the same way whichever door they came through), the entries, and their text and JSON-lines forms.
 */
import { UsageError } from '../domain/errors.js';
import type { AuditEntry, AuditQuery } from '../store/audit-store.js';
import type { Context } from '../runtime/context.js';

/** Batch ids as the batch store makes them (`YYYYMMDD-HHMMSS-hex`). */
export const AUDIT_BATCH_ID = /^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$/;
/** Actor names (operators, `user@host`, `schedule nightly`, a BULK_UNASSIGN_ACTOR): printable, at most 100 characters. */
const ACTOR_FILTER = /^[^\p{Cc}\p{Cf}\u2028\u2029]{1,100}$/u;
/** Entries one query returns at most (newest). */
export const AUDIT_LIMIT = { min: 1, max: 5000, default: 1000 } as const;

export const SINCE_FORMS = 'an ISO date or time (2026-11-25, 2026-11-25T14:00:00Z) or a span back from now (30m, 24h, 7d, 2w)';
const SPAN = /^(\d{1,6})(m|h|d|w)$/;
const SPAN_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** `--since` as a time in ms: an ISO date/time, or a span back from `now`. A UsageError shows the accepted forms. */
export function parseSince(text: string, now = Date.now()): number {
  const value = text.trim();
  const span = SPAN.exec(value);
  if (span) return now - Number(span[1]) * SPAN_MS[span[2]!]!;
  const at = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(at)) throw new UsageError(`--since ${JSON.stringify(value.slice(0, 40))} is not a time: give ${SINCE_FORMS}`);
  return at;
}

export interface AuditFilterInput {
  readonly batch?: string | undefined;
  readonly actor?: string | undefined;
  readonly since?: string | undefined;
  readonly limit?: number | undefined;
}

/** The filters as a store query; a value that cannot be one is a UsageError saying what would be. */
export function auditQuery(input: AuditFilterInput, now = Date.now()): AuditQuery {
  const batch = input.batch?.trim();
  const actor = input.actor?.trim();
  const since = input.since?.trim();
  if (batch && !AUDIT_BATCH_ID.test(batch))
    throw new UsageError(`--batch ${JSON.stringify(batch.slice(0, 40))} is not a batch id (like 20261125-020000-ab12cd)`);
  if (actor && !ACTOR_FILTER.test(actor))
    throw new UsageError(`--actor ${JSON.stringify(actor.slice(0, 40))} is not an actor name (printable, at most 100 characters)`);
  const limit = input.limit ?? AUDIT_LIMIT.default;
  if (!Number.isSafeInteger(limit) || limit < AUDIT_LIMIT.min || limit > AUDIT_LIMIT.max)
    throw new UsageError(`--limit must be a whole number from ${AUDIT_LIMIT.min} to ${AUDIT_LIMIT.max}`);
  return {
    ...(batch ? { batchId: batch } : {}),
    ...(actor ? { actor } : {}),
    ...(since ? { since: parseSince(since, now) } : {}),
    limit,
  };
}

export async function listAudit(ctx: Pick<Context, 'audit'>, input: AuditFilterInput, now = Date.now()): Promise<AuditEntry[]> {
  return ctx.audit.list(auditQuery(input, now));
}

function detailText(entry: AuditEntry): string {
  return Object.entries(entry.details)
    .map(([k, v]) => `${k}=${typeof v === 'string' && (v === '' || /[\s="]/.test(v)) ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

/** `2026-11-25 14:03:07Z`: seconds are enough to read, the entry id orders within one. */
function timeText(at: number): string {
  return new Date(at)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** Aligned columns: time, actor, via, action, batch, details; oldest first. */
export function renderAudit(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return 'no audit entries match';
  const rows = entries.map((e) => [timeText(e.at), e.actor, e.from ? `${e.via} ${e.from}` : e.via, e.action, e.batchId ?? '-', detailText(e)]);
  const header = ['TIME', 'ACTOR', 'VIA', 'ACTION', 'BATCH', 'DETAILS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** One JSON object per line (what `--json` prints and a log shipper reads). */
export function auditJsonLines(entries: readonly AuditEntry[]): string {
  return entries.map((e) => JSON.stringify(e)).join('\n');
}
