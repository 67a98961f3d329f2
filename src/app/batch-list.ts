/**
 * The batch list with filters (status, kind, name) and pages, for the console. Batches are indexed by creation
 * time only (store/batch-store.ts), so a filtered list walks the index newest first, a chunk of records per
 * round trip, and keeps only the page. The index holds the batches within RESULTS_TTL_DAYS; the walk stops at
 * MAX_SCANNED all the same, and says so, rather than let one request read an unbounded index.
 */
import { BATCH_STATUSES, type BatchStatus } from '../domain/lifecycle.js';
import type { Context } from '../runtime/context.js';
import type { BatchKind, BatchRecord } from '../store/batch-store.js';

/** Every kind a batch record can have (codecs.ts BatchKind). */
export const BATCH_KINDS: readonly BatchKind[] = ['csv', 'nightly', 'rerun'];
export { BATCH_STATUSES };

const CHUNK = 200;
export const MAX_SCANNED = 20_000;

export interface BatchFilter {
  readonly status?: BatchStatus;
  readonly kind?: BatchKind;
  /** Case-insensitive text in the name or the id. */
  readonly name?: string;
}

export interface BatchListPage {
  readonly batches: readonly BatchRecord[];
  /** Batches matching the filter (among the first MAX_SCANNED of the index). */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  /** The walk stopped at MAX_SCANNED: older batches were not looked at. */
  readonly truncated: boolean;
}

function matches(batch: BatchRecord, filter: BatchFilter, text: string): boolean {
  if (filter.status !== undefined && batch.status !== filter.status) return false;
  if (filter.kind !== undefined && batch.kind !== filter.kind) return false;
  return text === '' || batch.name.toLowerCase().includes(text) || batch.id.includes(text);
}

export async function listBatches(
  ctx: Pick<Context, 'redis' | 'keys' | 'batches'>,
  filter: BatchFilter,
  offset: number,
  limit: number,
): Promise<BatchListPage> {
  const text = (filter.name ?? '').trim().toLowerCase();
  const batches: BatchRecord[] = [];
  let total = 0;
  let scanned = 0;
  for (;;) {
    const ids = await ctx.redis.zrevrange(ctx.keys.batchIndex, scanned, Math.min(scanned + CHUNK, MAX_SCANNED) - 1);
    scanned += ids.length;
    // Expired records are simply not listed here; batches.list() prunes them from the index.
    const records = await Promise.all(ids.map((id) => ctx.batches.get(id)));
    for (const batch of records) {
      if (!batch || !matches(batch, filter, text)) continue;
      if (total >= offset && batches.length < limit) batches.push(batch);
      total += 1;
    }
    if (ids.length < CHUNK || scanned >= MAX_SCANNED) return { batches, total, offset, limit, truncated: ids.length === CHUNK && scanned >= MAX_SCANNED };
  }
}
