/**
 * The batch lifecycle: the one definition of a batch's statuses, which action moves a batch from which
 * statuses to which, and the sets other modules ask about ("is it over?", "may its report be built?").
 * Nothing else in the code spells a status or a transition rule: TypeScript imports these tables, and the
 * Lua steps receive them as a generated prelude (`luaLifecyclePrelude`).
 *
 *   ingesting ──start──▶ running ──pause──▶ paused ──resume──▶ running
 *    │  │                  │  └──stop (API key rejected)──▶ stopped ──resume──▶ running
 *    │  └─preview─▶ dry-run│
 *    │                     ├──cancel (also from paused, stopped)──▶ cancelling
 *    │                     └──complete (last chat recorded; also from paused, stopped, cancelling,
 *    │                                  awaiting-approval)──▶ finalizing
 *    └─hold (over its chat limit)──▶ awaiting-approval ──approve──▶ running
 *                                        └──reject, expire (APPROVAL_TIMEOUT_HOURS)──▶ cancelling
 *   finalizing ──finish──▶ finished       finalizing ──finish-cancelled──▶ cancelled
 */

/** Every status a batch record can hold, in lifecycle order. */
export const BATCH_STATUSES = [
  'ingesting',
  'awaiting-approval',
  'running',
  'paused',
  'stopped',
  'cancelling',
  'finalizing',
  'finished',
  'cancelled',
  'dry-run',
] as const;

export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** The statuses by name, so code reads `Status.running` and a typo is a compile error. */
export const Status: { readonly [S in BatchStatus as S extends 'dry-run' ? 'dryRun' : S extends 'awaiting-approval' ? 'awaitingApproval' : S]: S } = {
  ingesting: 'ingesting',
  awaitingApproval: 'awaiting-approval',
  running: 'running',
  paused: 'paused',
  stopped: 'stopped',
  cancelling: 'cancelling',
  finalizing: 'finalizing',
  finished: 'finished',
  cancelled: 'cancelled',
  dryRun: 'dry-run',
};

export interface Transition {
  readonly from: readonly BatchStatus[];
  readonly to: BatchStatus;
  /** Reason stored on the batch record when the move is made by an operator ('' keeps none). */
  readonly reason: string;
}

/**
 * Every move a batch can make. A move is applied with one compare-and-set in Redis (the batch store's
 * `apply`), so two operators or two workers can never both make it.
 */
export const TRANSITIONS = {
  /** Ingest read the source cleanly: its chats are being enqueued. */
  start: { from: ['ingesting'], to: 'running', reason: '' },
  /** Ingest of a dry run: nothing is enqueued, the preview and report are all there is. */
  preview: { from: ['ingesting'], to: 'dry-run', reason: '' },
  /**
   * Ingest read the source cleanly but the batch is over its chat limit (MAX_BATCH_CHATS, a schedule's
   * --max-chats / --max-share): nothing is called until an operator approves it. The reason names the limit.
   */
  hold: { from: ['ingesting'], to: 'awaiting-approval', reason: 'held for approval' },
  /** An operator approved a held batch: its chats go on the queue. */
  approve: { from: ['awaiting-approval'], to: 'running', reason: '' },
  /** An operator rejected a held batch: every chat is recorded as cancelled, and the report is written. */
  reject: { from: ['awaiting-approval'], to: 'cancelling', reason: 'rejected by operator' },
  /** Nobody approved a held batch within APPROVAL_TIMEOUT_HOURS: it ends as if rejected. */
  expire: { from: ['awaiting-approval'], to: 'cancelling', reason: 'approval expired' },
  pause: { from: ['running'], to: 'paused', reason: 'paused by operator' },
  resume: { from: ['paused', 'stopped'], to: 'running', reason: '' },
  /** The API rejected the key: waiting chats are parked until an operator resumes. */
  stop: { from: ['running'], to: 'stopped', reason: 'API key rejected' },
  cancel: { from: ['running', 'paused', 'stopped'], to: 'cancelling', reason: 'cancelled by operator' },
  /** The batch's last chat got its result (in the result-recording Lua step): the report is due. */
  complete: { from: ['running', 'paused', 'stopped', 'cancelling', 'awaiting-approval'], to: 'finalizing', reason: '' },
  /** Report written; no chat was cancelled. */
  finish: { from: ['finalizing'], to: 'finished', reason: '' },
  /** Report written; some chats were cancelled. */
  finishCancelled: { from: ['finalizing'], to: 'cancelled', reason: '' },
} as const satisfies Readonly<Record<string, Transition>>;

export type TransitionName = keyof typeof TRANSITIONS;

/** Actions that create something from a batch without moving it, and the statuses that allow them. */
export const GUARDS = {
  /** A rerun batch can be made of a batch whose chats are all settled. */
  rerunFrom: ['finished', 'cancelled'],
  /** A restore (its unassigned chats assigned back) can be made of a batch whose chats are all settled. */
  restoreFrom: ['finished', 'cancelled'],
  /** A chat of a batch in these statuses is parked (not called) when a worker picks it up. */
  parkChats: ['paused', 'stopped', 'awaiting-approval'],
  /** A chat of a batch in these statuses is recorded as cancelled when a worker picks it up. */
  cancelChats: ['cancelling'],
} as const satisfies Readonly<Record<string, readonly BatchStatus[]>>;

/** Nothing will ever happen to a batch in these statuses again. */
export const FINAL: ReadonlySet<BatchStatus> = new Set<BatchStatus>(['finished', 'cancelled', 'dry-run']);

/** Statuses a watcher (the CLI's `run`, the console's live stream) stops waiting at: final, or needing an operator. */
export const WATCH_ENDS: ReadonlySet<BatchStatus> = new Set<BatchStatus>([...FINAL, 'stopped', 'awaiting-approval']);

/** Statuses whose report exists or can be rebuilt (a running batch's report would only be a snapshot). */
export const REPORTABLE: ReadonlySet<BatchStatus> = new Set<BatchStatus>([...FINAL, 'stopped']);

/** Statuses of a batch that still has work ahead of it (every status that is not final). */
export const ACTIVE: ReadonlySet<BatchStatus> = new Set<BatchStatus>(BATCH_STATUSES.filter((s) => !FINAL.has(s)));

export function isBatchStatus(value: string): value is BatchStatus {
  return (BATCH_STATUSES as readonly string[]).includes(value);
}

/** Whether `transition` may be applied to a batch in `status` (the store re-checks atomically). */
export function allows(name: TransitionName, status: BatchStatus): boolean {
  return (TRANSITIONS[name].from as readonly BatchStatus[]).includes(status);
}

/** Operator actions the console offers as buttons, and what each needs. */
export type OperatorAction = 'pause' | 'resume' | 'cancel' | 'rerun' | 'approve' | 'reject' | 'restore';

/** The statuses each operator action accepts. */
export const OPERATOR_ACTIONS: Readonly<Record<OperatorAction, readonly BatchStatus[]>> = {
  pause: TRANSITIONS.pause.from,
  resume: TRANSITIONS.resume.from,
  cancel: TRANSITIONS.cancel.from,
  rerun: GUARDS.rerunFrom,
  approve: TRANSITIONS.approve.from,
  reject: TRANSITIONS.reject.from,
  restore: GUARDS.restoreFrom,
};

/** Status names joined for messages: "running, paused or stopped". */
export function describeStatuses(statuses: readonly BatchStatus[]): string {
  return statuses.length <= 1 ? (statuses[0] ?? '') : `${statuses.slice(0, -1).join(', ')} or ${statuses[statuses.length - 1]}`;
}

function luaSet(statuses: Iterable<BatchStatus>): string {
  return `{${[...statuses].map((s) => `[${JSON.stringify(s)}]=true`).join(', ')}}`;
}

/**
 * Lua that defines the lifecycle for a script: `LIFECYCLE.park` / `LIFECYCLE.cancel` (sets of statuses),
 * `LIFECYCLE.complete_from` and `LIFECYCLE.complete_to`. Scripts that decide on a status begin with it, so
 * the rules in Lua are the rules above, never a second copy.
 */
export function luaLifecyclePrelude(): string {
  return [
    'local LIFECYCLE = {',
    `  park = ${luaSet(GUARDS.parkChats)},`,
    `  cancel = ${luaSet(GUARDS.cancelChats)},`,
    `  complete_from = ${luaSet(TRANSITIONS.complete.from)},`,
    `  complete_to = ${JSON.stringify(TRANSITIONS.complete.to)},`,
    '}',
    '',
  ].join('\n');
}
