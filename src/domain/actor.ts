/**
 * Who did something: the name recorded in the audit trail and on the batches an action created or moved.
 * Pure data; where a name comes from (BULK_UNASSIGN_ACTOR, the OS user, a console operator) is decided by the
 * adapter that took the action.
 */

/** Where an action came from. `schedule`: a scheduled tick (no person); `worker`: a worker on its own (expiry). */
export type ActorChannel = 'cli' | 'console' | 'schedule' | 'worker';

export interface Actor {
  /** The person or process: `alice`, `ops@host-1`, `schedule nightly`. Never a token or a hash of one. */
  readonly name: string;
  readonly via: ActorChannel;
  /** Where from, when known: a host name (CLI) or the client address (console). */
  readonly from?: string;
}

/** The actor of a worker acting on its own (an approval that expired, a report written). */
export const WORKER_ACTOR: Actor = { name: 'bulk-unassign', via: 'worker' };

/** The actor of a scheduled run: the schedule, by name. */
export function scheduleActor(schedule: string): Actor {
  return { name: `schedule ${schedule}`, via: 'schedule' };
}
