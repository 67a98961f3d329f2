/**
 * Glossary — these words mean exactly this everywhere in the code, the CLI and the reports.
 *
 * - **batch**:   one run of the tool over one source (a CSV file, a rerun, a nightly query). Has an id,
 *                a record in Redis, counters and, once finished, a report.
 * - **row**:     one data line of an input file. Every row ends up exactly one of: valid, rejected
 *                (cannot be a chat: bad phone, missing column) or duplicate (same chat earlier in the batch).
 * - **chat**:    what DoubleTick unassigns: a one-to-one chat (customer phone + business/WABA number) or a
 *                WhatsApp group (group id). A valid row names one chat; a chat is called at most once per batch.
 * - **chat key**: the canonical string for a chat inside a batch (see `chatKeyOf`).
 * - **job**:     the BullMQ job that unassigns one chat. Its id is derived from batch id + chat key, so
 *                re-enqueueing the same batch can never create a second job for a chat.
 * - **attempt**: one HTTP call for a job. A job makes 1..MAX_ATTEMPTS attempts.
 * - **result**:  the terminal state of one chat (succeeded / failed / cancelled), stored once in Redis with
 *                HTTP status, reason, attempts and time. Counters move atomically with it.
 * - **report**:  the files written when a batch finishes (summary.json, summary.md, failed.csv, rejected.csv).
 */

/** A chat to unassign: exactly one of a customer phone (with its business number) or a group id. */
export type ChatTarget =
  { readonly kind: 'individual'; readonly customerPhoneNumber: string; readonly wabaNumber: string } | { readonly kind: 'group'; readonly groupId: string };

/** One valid input row, normalised. */
export interface ChatRow {
  /** 1-based line number in the source file where the row starts. */
  readonly line: number;
  readonly chat: ChatTarget;
  /** Canonical chat key (see `chatKeyOf`). */
  readonly key: string;
  /** The row's original cells, keyed by the file's own header names (extra columns included). */
  readonly cells: Readonly<Record<string, string>>;
}

/** One row that cannot be a chat, with why. */
export interface RejectedRow {
  readonly line: number;
  /** The offending value as written in the file ('' when a required cell is empty). */
  readonly raw: string;
  /** Which column the problem is in (header name as written), when there is one. */
  readonly column?: string;
  readonly reason: string;
  readonly cells: Readonly<Record<string, string>>;
}

/**
 * Outcome classes for a chat's result. `failed` carries a failure class. `skipped`: no change was made on
 * purpose, with the reason (a chat found without an agent before its unassign, a restore's chat someone
 * assigned since).
 */
export type ResultState = 'succeeded' | 'failed' | 'cancelled' | 'skipped';

/**
 * Why a failure happened, in the terms a rerun cares about: permanent (the API refused this chat:
 * 400/404/422) cannot be fixed by retrying; transient (5xx, timeouts, connection errors) can. A 429 or a
 * rejected key never fails a chat: the first pauses every worker, the second stops the batch.
 */
export type FailureClass = 'permanent' | 'transient';

/** Canonical key for a chat: `p:<phone>@<waba>` or `g:<groupId>`. Phone numbers must already be normalised. */
export function chatKeyOf(chat: ChatTarget): string {
  return chat.kind === 'individual' ? `p:${chat.customerPhoneNumber}@${chat.wabaNumber}` : `g:${chat.groupId}`;
}

/** Inverse of `chatKeyOf`. */
export function chatFromKey(key: string): ChatTarget {
  if (key.startsWith('g:')) return { kind: 'group', groupId: key.slice(2) };
  const at = key.indexOf('@');
  return { kind: 'individual', customerPhoneNumber: key.slice(2, at), wabaNumber: key.slice(at + 1) };
}
