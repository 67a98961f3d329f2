/**
 * The brake: whether a batch may start at once or must wait for an operator's approval. A batch is held when
 * it has more chats than MAX_BATCH_CHATS, or, for a schedule's chat query, more than the schedule's
 * `--max-chats`, or a larger share of the chats the listing returned than its `--max-share`. A rule that went
 * wrong (a filter removed, so it selects the whole inbox) then waits for a person instead of unassigning
 * thousands of chats at 2 a.m. Pure: ingest asks it once the source is read, at the point where the batch
 * would start.
 */

export interface AdmissionLimits {
  /** MAX_BATCH_CHATS; 0 = no limit. */
  readonly maxBatchChats: number;
  /** A schedule's --max-chats. */
  readonly maxChats?: number | undefined;
  /** A schedule's --max-share: a fraction in (0, 1] of the chats the listing returned. */
  readonly maxShare?: number | undefined;
  /** How many chats the listing returned (a schedule's chat query); the share is taken of this. */
  readonly listed?: number | undefined;
}

export type Admission = { readonly held: false } | { readonly held: true; readonly reason: string };

const count = (n: number): string => n.toLocaleString('en-US');

/** Percent for a message: whole numbers, one decimal below 10 %. */
function percent(fraction: number): string {
  const p = fraction * 100;
  return `${p < 10 ? Math.round(p * 10) / 10 : Math.round(p)}%`;
}

/**
 * Whether a batch of `valid` chats starts (held: false) or waits for approval (held: true, with the reason to
 * show and store). `limits` undefined: the operator passed --approve, nothing holds the batch.
 */
export function admission(valid: number, limits: AdmissionLimits | undefined): Admission {
  if (limits === undefined) return { held: false };
  const held = (why: string): Admission => ({ held: true, reason: `held for approval: ${count(valid)} chats, ${why}` });
  if (limits.maxChats !== undefined && valid > limits.maxChats) return held(`more than the schedule's --max-chats (${limits.maxChats})`);
  if (limits.maxShare !== undefined && limits.listed !== undefined && limits.listed > 0 && valid / limits.listed > limits.maxShare) {
    return held(`${percent(valid / limits.listed)} of the ${count(limits.listed)} chats listed, more than the schedule's --max-share (${limits.maxShare})`);
  }
  if (limits.maxBatchChats > 0 && valid > limits.maxBatchChats) return held(`more than MAX_BATCH_CHATS (${limits.maxBatchChats})`);
  return { held: false };
}
