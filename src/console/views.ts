/**
 * What the console's API says about a batch: the batch record plus what the page derives from it (pending,
 * rate, ETA, which actions and reports apply now). Deciding the actions here keeps the page free of batch rules.
 */
import type { BatchRecord } from '../store/batch-store.js';
import { rateAndEta } from '../cli/commands/inspect.js';
import { OPERATOR_ACTIONS, type OperatorAction, REPORTABLE } from '../domain/lifecycle.js';

export type BatchAction = OperatorAction;

export interface BatchView extends BatchRecord {
  readonly pending: number;
  readonly ratePerSecond: number;
  readonly etaSeconds: number | null;
  /** Actions the batch's status allows now (the server still checks them atomically). */
  readonly actions: readonly BatchAction[];
  /** Whether report files can be downloaded (written, or can be rebuilt from Redis). */
  readonly reportReady: boolean;
}

export function batchView(batch: BatchRecord, now = Date.now()): BatchView {
  const actions = (Object.keys(OPERATOR_ACTIONS) as BatchAction[]).filter((a) => OPERATOR_ACTIONS[a].includes(batch.status) && (a !== 'rerun' || batch.counts.failed > 0));
  return {
    ...batch,
    pending: Math.max(0, batch.counts.valid - batch.done),
    ...rateAndEta(batch, now),
    actions,
    reportReady: REPORTABLE.has(batch.status),
  };
}
