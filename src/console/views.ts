/**
 * What the console's API says about a batch: the batch record plus what the page derives from it (pending,
 * rate, ETA, which actions and reports apply now). Deciding the actions here keeps the page free of batch rules.
 */
import type { BatchRecord } from '../store/batch-store.js';
import { rateAndEta } from '../cli/commands/inspect.js';
import type { BatchStatus } from '../domain/chat.js';

export type BatchAction = 'pause' | 'resume' | 'cancel' | 'rerun';

export interface BatchView extends BatchRecord {
  readonly pending: number;
  readonly ratePerSecond: number;
  readonly etaSeconds: number | null;
  /** Actions the batch's status allows now (the server still checks them atomically). */
  readonly actions: readonly BatchAction[];
  /** Whether report files can be downloaded (written, or can be rebuilt from Redis). */
  readonly reportReady: boolean;
}

/** Statuses from which batch-control.ts / rerun.ts accept each action. */
const ACTION_FROM: Readonly<Record<BatchAction, readonly BatchStatus[]>> = {
  pause: ['running', 'queued'],
  resume: ['paused', 'stopped'],
  cancel: ['running', 'queued', 'paused', 'stopped'],
  rerun: ['finished', 'cancelled'],
};

/** Statuses whose report exists or can be rebuilt; a running batch's report would be a snapshot, so none yet. */
export const REPORT_STATUSES: ReadonlySet<BatchStatus> = new Set(['finished', 'cancelled', 'dry-run', 'stopped']);

export function batchView(batch: BatchRecord, now = Date.now()): BatchView {
  const actions = (Object.keys(ACTION_FROM) as BatchAction[]).filter((a) => ACTION_FROM[a].includes(batch.status) && (a !== 'rerun' || batch.counts.failed > 0));
  return {
    ...batch,
    pending: Math.max(0, batch.counts.valid - batch.done),
    ...rateAndEta(batch, now),
    actions,
    reportReady: REPORT_STATUSES.has(batch.status),
  };
}
