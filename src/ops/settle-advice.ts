/**
 * What an operator can do about a batch whose chats are not all settled yet, when something that needs them
 * settled (a rerun, a restore) is asked of it. The advice follows the lifecycle table: a command is suggested only
 * where its transition is allowed from the batch's status, so the advice never leads to a refusal.
 */
import { allows, Status } from '../domain/lifecycle.js';
import type { BatchRecord } from '../store/batch-store.js';

/**
 * The next step for `batch` (not stopped: a stopped batch's own advice names its reason), to be followed by
 * `then` ("then restore"); '' adds nothing.
 */
export function untilSettled(batch: Pick<BatchRecord, 'id' | 'status'>, then = ''): string {
  const after = then ? `, ${then}` : '';
  if (batch.status === Status.awaitingApproval) {
    // Rejecting records every chat as cancelled: nothing would be left to rerun or restore.
    return `it is held for approval and has sent nothing yet: \`bulk-unassign approve ${batch.id}\` and let it finish${after}`;
  }
  if (allows('cancel', batch.status)) return `wait for it to finish, or \`bulk-unassign cancel ${batch.id}\` first${after}`;
  return `wait for it to finish${after}`;
}
