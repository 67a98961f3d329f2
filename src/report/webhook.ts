/**
 * NOTIFY_WEBHOOK_URL: a scheduled batch's summary (the summary.json of its report) POSTed as JSON when the batch
 * finishes (event `batch.finished`), and a batch held for approval (event `batch.needs_approval`, its body built
 * by ingest/hold.ts). Delivery runs as a `notify` job (jobs/notify.ts) so it is retried with backoff and never holds up
 * the batch; this module is the single HTTP call.
 */
import got, { RequestError } from 'got';

import type { NotifySummary } from '../store/queue.js';
import { EVENT_BATCH_FINISHED, EVENT_HEADER } from './webhook-events.js';

/** The webhook URL for logs: scheme and host only (paths and query strings often carry a token). */
export function webhookTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '<invalid url>';
  }
}

/** One delivery attempt of `summary` as `event`. Resolves on any 2xx; throws otherwise (the job's backoff then retries). */
export async function postSummary(url: string, summary: NotifySummary, timeoutMs: number, event = EVENT_BATCH_FINISHED): Promise<number> {
  const response = await got
    .post(url, {
      json: summary,
      headers: { 'user-agent': 'bulk-unassign', [EVENT_HEADER]: event },
      timeout: { request: timeoutMs },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
    })
    .catch((error: unknown) => {
      // got's messages may quote the URL (and its token): keep only the error code.
      const code = error instanceof RequestError ? error.code : 'ERR_UNKNOWN';
      throw new Error(`webhook ${webhookTarget(url)} unreachable (${code})`);
    });
  if (response.statusCode < 200 || response.statusCode > 299) {
    throw new Error(`webhook ${webhookTarget(url)} answered HTTP ${response.statusCode}`);
  }
  return response.statusCode;
}
