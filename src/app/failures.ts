/**
 * The failed chats of a batch, a page at a time, for the console's table: filtered by reason text and failure
 * class, numbers masked as the logs mask them (maskChatKey) unless one row is asked for in full.
 *
 * Each call builds the batch's failure index (store/failure-index.ts) with the filter as its selection and drops
 * it before returning — no cache: the index's `selected` is then the exact count of this filter now, which is
 * what the rerun form offers ("rerun these N"), and nothing outlives the request. A page streams the index in
 * file order and keeps only the rows of the page: memory is a page, whatever the batch size.
 */
import { maskChatKey } from '../config/logger.js';
import type { FailureClass } from '../domain/chat.js';
import { selectsFailure } from '../ops/rerun.js';
import type { Context } from '../runtime/context.js';
import { type Failure, indexFailures } from '../store/failure-index.js';
import type { ChatResult } from '../store/result-store.js';

/** `transient` is what a default rerun takes, `all` what a rerun with includePermanent takes. */
export type FailureClassFilter = 'all' | FailureClass;
export const FAILURE_CLASS_FILTERS: readonly FailureClassFilter[] = ['all', 'transient', 'permanent'];

export interface FailureFilter {
  /** Only failures whose reason contains this text, case-insensitive (rerun's onlyReason). */
  readonly reason?: string;
  /** @default 'all' */
  readonly failureClass?: FailureClassFilter;
}

/** The same test rerun applies (selectsFailure), so a filter's count is the number a rerun with it would take. */
export function failureSelector(filter: FailureFilter): (result: ChatResult) => boolean {
  const reason = filter.reason?.trim() || undefined;
  const only = reason === undefined ? {} : { onlyReason: reason };
  switch (filter.failureClass ?? 'all') {
    case 'transient':
      return (r) => selectsFailure(r, only);
    case 'permanent':
      return (r) => selectsFailure(r, { ...only, includePermanent: true }) && r.failureClass === 'permanent';
    default:
      return (r) => selectsFailure(r, { ...only, includePermanent: true });
  }
}

/** The rerun API's options that take exactly this filter's failures, or undefined when no rerun does (permanent only). */
export function rerunOptionsFor(filter: FailureFilter): { includePermanent: boolean; onlyReason?: string } | undefined {
  const reason = filter.reason?.trim();
  const cls = filter.failureClass ?? 'all';
  if (cls === 'permanent') return undefined;
  return { includePermanent: cls === 'all', ...(reason ? { onlyReason: reason } : {}) };
}

export interface FailureRow {
  /** The row's line in the batch's source (0 when it has none, e.g. a chat listed by GET /chats). */
  readonly line: number;
  /** The chat key, masked unless revealed. */
  readonly chat: string;
  readonly failureClass: FailureClass;
  readonly httpStatus: number;
  readonly attempts: number;
  readonly finishedAt: number;
  readonly reason: string;
}

export interface FailurePage {
  readonly batchId: string;
  /** Failed chats this filter selects. */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly rows: readonly FailureRow[];
  /** The rerun that takes exactly these `total` chats, or null when none does. */
  readonly rerun: { includePermanent: boolean; onlyReason?: string } | null;
}

function rowOf(f: Failure, reveal: boolean): FailureRow {
  return {
    line: f.input.line,
    chat: reveal ? f.key : maskChatKey(f.key),
    failureClass: f.result.failureClass ?? 'transient',
    httpStatus: f.result.httpStatus,
    attempts: f.result.attempts,
    finishedAt: f.result.finishedAt,
    reason: f.result.reason,
  };
}

async function withIndex<T>(
  ctx: Context,
  batchId: string,
  filter: FailureFilter,
  use: (selected: number, rows: AsyncIterable<Failure>) => Promise<T>,
): Promise<T> {
  const index = await indexFailures(ctx, batchId, failureSelector(filter));
  try {
    return await use(index.selected, index.inFileOrder());
  } finally {
    await index.drop();
  }
}

/** Rows `offset` … `offset + limit - 1` of the filtered failures in file order. */
export async function failurePage(ctx: Context, batchId: string, filter: FailureFilter, offset: number, limit: number): Promise<FailurePage> {
  return withIndex(ctx, batchId, filter, async (total, failures) => {
    const rows: FailureRow[] = [];
    if (offset < total) {
      let position = 0;
      for await (const f of failures) {
        if (position >= offset) rows.push(rowOf(f, false));
        position += 1;
        if (rows.length >= limit) break;
      }
    }
    return { batchId, total, offset, limit, rows, rerun: rerunOptionsFor(filter) ?? null };
  });
}

/**
 * One row in full (the operator asked to see the number): the row at `offset` under the same filter, provided it
 * is still the row of `line` the operator saw — otherwise undefined (the failures changed meanwhile). Logged,
 * masked, so the log says who looked at which row and when.
 */
export async function revealFailure(
  ctx: Context,
  batchId: string,
  filter: FailureFilter,
  offset: number,
  line: number,
): Promise<(FailureRow & { cells: Record<string, string> }) | undefined> {
  return withIndex(ctx, batchId, filter, async (total, failures) => {
    if (offset >= total) return undefined;
    let position = 0;
    for await (const f of failures) {
      if (position === offset) {
        if (f.input.line !== line) return undefined;
        ctx.logger.info({ batchId, line, chat: maskChatKey(f.key) }, 'console: failed chat revealed');
        return { ...rowOf(f, true), cells: { ...f.input.cells } };
      }
      position += 1;
    }
    return undefined;
  });
}
