/**
 * The audit trail: one append-only Redis stream under the prefix, one entry per state-changing action (who,
 * from where, what, on which batch, when). XADD is a single command, so concurrent actions all stay, in the
 * order Redis received them. Entries older than AUDIT_RETENTION_DAYS are trimmed on append (MINID, approximate:
 * Redis trims whole stream nodes, so a few entries may outlive the window by minutes).
 *
 * Never store a token, a token hash or an API key in `details`: the trail is shown to every operator.
 */
import type { Actor, ActorChannel } from '../domain/actor.js';
import type { ScriptedRedis } from './scripts.js';

/** Every action the trail knows. Adding one starts here, so the `audit` command and the console can list them. */
export const AUDIT_ACTIONS = [
  'upload',
  'dry-run',
  'pause',
  'resume',
  'cancel',
  'rerun',
  'restore',
  'approve',
  'reject',
  'expire',
  'schedule-set',
  'schedule-remove',
  'schedule-run-now',
  'schedule-tick',
  'console-login',
  'console-login-failed',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** A detail value: kept small and flat so an entry reads on one line. */
export type AuditDetail = string | number | boolean;

export interface AuditEntry {
  /** The stream entry id (`<ms>-<seq>`): unique, and in the order Redis received the actions. */
  readonly id: string;
  readonly at: number;
  readonly actor: string;
  readonly via: ActorChannel;
  readonly from?: string;
  readonly action: AuditAction;
  readonly batchId?: string;
  readonly details: Readonly<Record<string, AuditDetail>>;
}

export interface NewAuditEntry {
  readonly actor: Actor;
  readonly action: AuditAction;
  readonly batchId?: string;
  readonly details?: Readonly<Record<string, AuditDetail>>;
}

export interface AuditQuery {
  readonly batchId?: string;
  readonly actor?: string;
  /** Entries at or after this time, ms. */
  readonly since?: number;
  /** At most this many entries, the newest. @default 1000 */
  readonly limit?: number;
}

export interface AuditStore {
  /** Appends one entry; returns it as stored. */
  record(entry: NewAuditEntry, now?: number): Promise<AuditEntry>;
  /** Matching entries, oldest first. */
  list(query?: AuditQuery): Promise<AuditEntry[]>;
}

const CHANNELS: ReadonlySet<string> = new Set<ActorChannel>(['cli', 'console', 'schedule', 'worker']);
const ACTIONS: ReadonlySet<string> = new Set<string>(AUDIT_ACTIONS);
const DAY_MS = 24 * 60 * 60 * 1000;
/** Entries read per XREVRANGE page while filtering. */
const PAGE = 500;

function decodeEntry(id: string, flat: readonly string[]): AuditEntry | undefined {
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
  const action = fields.get('action') ?? '';
  const via = fields.get('via') ?? '';
  if (!ACTIONS.has(action) || !CHANNELS.has(via)) return undefined;
  let details: Record<string, AuditDetail> = {};
  try {
    const parsed: unknown = JSON.parse(fields.get('details') ?? '{}');
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) details = parsed as Record<string, AuditDetail>;
  } catch {
    // A damaged details field keeps the rest of the entry readable.
  }
  const from = fields.get('from');
  const batchId = fields.get('batch');
  return {
    id,
    at: Number(id.split('-')[0]),
    actor: fields.get('actor') ?? '',
    via: via as ActorChannel,
    ...(from ? { from } : {}),
    action: action as AuditAction,
    ...(batchId ? { batchId } : {}),
    details,
  };
}

/**
 * Whether an entry is about that batch: its own batch; a rerun (recorded on the new batch) also under its
 * `details.parent`; a scheduled run that started several batches under each id of its `details.batches`.
 */
function concerns(entry: AuditEntry, batchId: string): boolean {
  if (entry.batchId === batchId) return true;
  if (entry.action === 'rerun' && entry.details.parent === batchId) return true;
  const batches = entry.details.batches;
  return typeof batches === 'string' && batches.split(',').includes(batchId);
}

/** Whether an entry passes the query's batch and actor filters (the time window is the range read). */
export function matches(entry: AuditEntry, query: AuditQuery): boolean {
  if (query.batchId !== undefined && !concerns(entry, query.batchId)) return false;
  if (query.actor !== undefined && entry.actor !== query.actor) return false;
  return true;
}

export function makeAuditStore(redis: ScriptedRedis, streamKey: string, retentionDays: number): AuditStore {
  return {
    record: async (entry, now = Date.now()) => {
      const fields = ['actor', entry.actor.name, 'via', entry.actor.via];
      if (entry.actor.from) fields.push('from', entry.actor.from);
      fields.push('action', entry.action);
      if (entry.batchId) fields.push('batch', entry.batchId);
      fields.push('details', JSON.stringify(entry.details ?? {}));
      const minId = Math.max(0, now - retentionDays * DAY_MS);
      const id = await redis.xadd(streamKey, 'MINID', '~', String(minId), '*', ...fields);
      if (id === null) throw new Error('the audit stream refused an entry');
      return decodeEntry(id, fields)!;
    },
    list: async (query = {}) => {
      const limit = query.limit ?? 1000;
      const start = query.since === undefined ? '-' : String(Math.max(0, Math.floor(query.since)));
      const found: AuditEntry[] = [];
      let end = '+';
      // Newest first, page by page, until enough match or the stream (or the window) is exhausted.
      for (;;) {
        const page = await redis.xrevrange(streamKey, end, start, 'COUNT', PAGE);
        for (const [id, flat] of page) {
          const entry = decodeEntry(id, flat);
          if (entry && matches(entry, query)) found.push(entry);
          if (found.length >= limit) return found.reverse();
        }
        if (page.length < PAGE) return found.reverse();
        end = `(${page[page.length - 1]![0]}`;
      }
    },
  };
}
