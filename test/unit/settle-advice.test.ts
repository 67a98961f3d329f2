/**
 * Rerun and restore of a batch whose chats are not all settled: refused, with advice that follows the lifecycle
 * table. Every command the advice names must be allowed from the batch's status, so following it never ends in
 * another refusal; a settled batch is not refused.
 */
import { describe, expect, it } from '@jest/globals';

import { allows, BATCH_STATUSES, type BatchStatus, GUARDS, Status, type TransitionName } from '../../src/domain/lifecycle.js';
import { rerunRefusal } from '../../src/ops/rerun.js';
import { restoreRefusal } from '../../src/ops/restore.js';
import { untilSettled } from '../../src/ops/settle-advice.js';
import { batchRecord } from './fakes/stores.js';

/** The CLI commands a message tells the operator to run, as lifecycle transitions. */
function suggested(message: string): TransitionName[] {
  return [...message.matchAll(/`bulk-unassign (\w+) /g)].map((m) => m[1] as TransitionName);
}

const REFUSALS = [
  ['rerun', (status: BatchStatus) => rerunRefusal(batchRecord({ status, counts: { valid: 4, failed: 1 } }), [])],
  ['restore', (status: BatchStatus) => restoreRefusal(batchRecord({ status, counts: { valid: 4, succeeded: 3 } }), [], false)],
] as const;

describe.each(REFUSALS)('%s refusal, for every status', (action, refusal) => {
  const settled: readonly BatchStatus[] = action === 'rerun' ? GUARDS.rerunFrom : GUARDS.restoreFrom;

  it.each(BATCH_STATUSES.filter((s) => !settled.includes(s)))('%s: refused, and every command it suggests is allowed from that status', (status) => {
    const error = refusal(status);
    expect(error?.code).toBe('ERR_BATCH_STATE');
    for (const command of suggested(error?.message ?? '')) expect([command, allows(command, status)]).toEqual([command, true]);
  });

  it.each(settled)('%s: not refused', (status) => {
    expect(refusal(status)).toBeUndefined();
  });

  it('a held batch is pointed at approve, never at cancel (which it refuses)', () => {
    const message = refusal(Status.awaitingApproval)?.message ?? '';
    expect(suggested(message)).toEqual(['approve']);
    expect(allows('cancel', Status.awaitingApproval)).toBe(false);
  });

  it('a stopped batch is told its chats are waiting, and that resume sends them', () => {
    expect(refusal(Status.stopped)?.message).toMatch(/waiting.*resume/);
  });

  it('a dry run is told there is nothing to do, not to wait for it', () => {
    const message = refusal(Status.dryRun)?.message ?? '';
    expect(message).toMatch(/dry run/);
    expect(message).not.toMatch(/wait|finish/);
  });
});

describe('untilSettled', () => {
  it.each([
    [Status.running, 'wait for it to finish, or `bulk-unassign cancel b1` first, then restore'],
    [Status.paused, 'wait for it to finish, or `bulk-unassign cancel b1` first, then restore'],
    [Status.ingesting, 'wait for it to finish, then restore'],
    [Status.cancelling, 'wait for it to finish, then restore'],
    [Status.finalizing, 'wait for it to finish, then restore'],
    [Status.awaitingApproval, 'it is held for approval and has sent nothing yet: `bulk-unassign approve b1` and let it finish, then restore'],
  ] as const)('%s → %s', (status, advice) => {
    expect(untilSettled({ id: 'b1', status }, 'then restore')).toBe(advice);
  });

  it('adds nothing when there is no next step', () => {
    expect(untilSettled({ id: 'b1', status: Status.finalizing })).toBe('wait for it to finish');
  });
});
