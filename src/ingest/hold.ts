/**
 * The brake at ingest: where a batch that read cleanly would start, `admission` (domain/admission.ts) decides
 * whether it starts or is held for approval. A held batch keeps a masked sample of what it would send, gets a
 * delayed expiry job (APPROVAL_TIMEOUT_HOURS) and, with NOTIFY_WEBHOOK_URL set, a `batch.needs_approval`
 * webhook. Nothing of it is enqueued: approving it (ops/approval.ts) puts its chats on the queue.
 */
import { admission, type AdmissionLimits } from '../domain/admission.js';
import type { ResolvedConfig } from '../config/config.js';
import { maskChatKey } from '../config/logger.js';
import type { BatchRecord } from '../store/batch-store.js';
import { enqueueApprovalExpiry, enqueueNotify } from '../store/queue.js';
import { EVENT_BATCH_NEEDS_APPROVAL } from '../report/webhook-events.js';
import type { Keys } from '../store/keys.js';
import type { BatchStore } from '../store/batch-store.js';
import type { ScriptedRedis } from '../store/scripts.js';
import type { Queue } from 'bullmq';
import type { QueueJobData } from '../store/queue.js';

/** What holding a batch touches (a part of ingest's deps). */
export interface HoldDeps {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly batches: BatchStore;
  readonly queue: Queue<QueueJobData>;
}

/** Chats shown as what a held batch would send. */
export const SAMPLE_SIZE = 10;

export interface IngestBrake {
  readonly limits: AdmissionLimits;
  /** --approve: the batch starts even over its limits (`onSkipped` hears the reason it would have been held for). */
  readonly approved?: boolean;
  /** Chats the listing returned (a schedule's chat query), read once the source is consumed: --max-share's base. */
  readonly listed?: () => number;
  /** How long a held batch waits for approval before it is rejected (ms). */
  readonly expireAfterMs: number;
  /** Send `batch.needs_approval` (NOTIFY_WEBHOOK_URL is set). */
  readonly notify: boolean;
  /** Called when --approve started a batch that would have been held. */
  readonly onSkipped?: (batchId: string, reason: string) => Promise<void>;
}

/** Per batch, what the brake adds to the configured limits. */
export interface BrakeRequest {
  readonly approved?: boolean;
  readonly maxChats?: number | undefined;
  readonly maxShare?: number | undefined;
  readonly listed?: () => number;
  readonly onSkipped?: (batchId: string, reason: string) => Promise<void>;
}

/** The brake for a batch under this configuration (MAX_BATCH_CHATS, APPROVAL_TIMEOUT_HOURS, NOTIFY_WEBHOOK_URL). */
export function configuredBrake(
  config: Pick<ResolvedConfig, 'maxBatchChats' | 'approvalTimeoutHours' | 'notifyWebhookUrl'>,
  request: BrakeRequest = {},
): IngestBrake {
  return {
    limits: { maxBatchChats: config.maxBatchChats, maxChats: request.maxChats, maxShare: request.maxShare },
    expireAfterMs: config.approvalTimeoutHours * 3_600_000,
    notify: Boolean(config.notifyWebhookUrl),
    ...(request.approved ? { approved: true } : {}),
    ...(request.listed ? { listed: request.listed } : {}),
    ...(request.onSkipped ? { onSkipped: request.onSkipped } : {}),
  };
}

/** The transition that starts a batch of `valid` chats, and the hold reason when it is held. */
export function admit(brake: IngestBrake | undefined, valid: number): { readonly hold: boolean; readonly reason: string } {
  if (!brake) return { hold: false, reason: '' };
  const verdict = admission(valid, { ...brake.limits, ...(brake.listed ? { listed: brake.listed() } : {}) });
  if (!verdict.held) return { hold: false, reason: '' };
  return { hold: !brake.approved, reason: verdict.reason };
}

/** The first chats of a batch, masked: from the staged order while it is there, else from the chats hash. */
async function sampleOf(deps: HoldDeps, batchId: string): Promise<string[]> {
  const k = deps.keys.batch(batchId);
  let chatKeys = await deps.redis.lrange(k.order, 0, SAMPLE_SIZE - 1);
  if (chatKeys.length === 0) {
    const [, flat] = await deps.redis.hscan(k.chats, '0', 'COUNT', SAMPLE_SIZE);
    chatKeys = flat.filter((_, i) => i % 2 === 0).slice(0, SAMPLE_SIZE);
  }
  return chatKeys.map(maskChatKey);
}

/** What the `batch.needs_approval` webhook says. */
export function needsApprovalPayload(batch: BatchRecord, expiresAt: number): Readonly<Record<string, unknown>> & { batchId: string } {
  return {
    event: EVENT_BATCH_NEEDS_APPROVAL,
    batchId: batch.id,
    name: batch.name,
    kind: batch.kind,
    source: batch.source,
    chats: batch.counts.valid,
    reason: batch.reason,
    sample: batch.sample,
    expiresAt: new Date(expiresAt).toISOString(),
    approve: `bulk-unassign approve ${batch.id}`,
    reject: `bulk-unassign reject ${batch.id}`,
  };
}

/**
 * After the start (or hold) of a batch: a held batch keeps its sample, gets its expiry and the webhook; a batch
 * --approve started over its limits says so in a note and to `onSkipped`. Returns whether the batch is held.
 */
export async function afterAdmission(deps: HoldDeps, batchId: string, brake: IngestBrake | undefined, admitted: ReturnType<typeof admit>): Promise<boolean> {
  if (!brake || admitted.reason === '') return false;
  if (admitted.hold) {
    await afterHold(deps, batchId, brake);
    return true;
  }
  await deps.batches.addNote(batchId, `brake skipped with --approve: it would have been ${admitted.reason}`);
  await brake.onSkipped?.(batchId, admitted.reason);
  return false;
}

/**
 * After the batch moved to awaiting approval: keep its sample, schedule its expiry, send the webhook. The expiry
 * job is added first: a held batch must never wait forever because a later step failed.
 */
async function afterHold(deps: HoldDeps, batchId: string, brake: IngestBrake): Promise<void> {
  const expiresAt = Date.now() + brake.expireAfterMs;
  await enqueueApprovalExpiry(deps.queue, batchId, brake.expireAfterMs);
  await deps.batches.update(batchId, { sample: JSON.stringify(await sampleOf(deps, batchId)), approvalExpiresAt: expiresAt });
  if (brake.notify) await enqueueNotify(deps.queue, needsApprovalPayload(await deps.batches.require(batchId), expiresAt), EVENT_BATCH_NEEDS_APPROVAL);
}
