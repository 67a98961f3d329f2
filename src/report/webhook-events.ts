/**
 * The webhook's event names and the header that carries them, apart from the HTTP call (webhook.ts): the ingest
 * names `batch.needs_approval` when it holds a batch, and an ingest process has no use for an HTTP client.
 */

/** Header naming the event, so one receiver can serve several tools. */
export const EVENT_HEADER = 'x-bulk-unassign-event';
export const EVENT_BATCH_FINISHED = 'batch.finished';
export const EVENT_BATCH_NEEDS_APPROVAL = 'batch.needs_approval';
