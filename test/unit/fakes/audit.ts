/** An in-memory audit trail with the store's own filter (matches), for the unit tier. */
import { type AuditEntry, type AuditStore, matches } from '../../../src/store/audit-store.js';

export interface FakeAuditStore extends AuditStore {
  readonly entries: AuditEntry[];
}

export function fakeAuditStore(): FakeAuditStore {
  const entries: AuditEntry[] = [];
  let seq = 0;
  return {
    entries,
    record: async (entry, now = Date.now()) => {
      const stored: AuditEntry = {
        id: `${now}-${seq++}`,
        at: now,
        actor: entry.actor.name,
        via: entry.actor.via,
        ...(entry.actor.from ? { from: entry.actor.from } : {}),
        action: entry.action,
        ...(entry.batchId ? { batchId: entry.batchId } : {}),
        details: entry.details ?? {},
      };
      entries.push(stored);
      return stored;
    },
    list: async (query = {}) => entries.filter((e) => matches(e, query) && (query.since === undefined || e.at >= query.since)).slice(-(query.limit ?? 1000)),
  };
}
