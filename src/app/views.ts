/**
 * Views of a batch for people: the one-paragraph text the CLI prints, and what the console's API says about a
 * batch (the record plus pending, rate, ETA, which actions and reports apply now). Deciding the actions here
 * keeps the page free of batch rules.
 */
import type { ResolvedConfig } from '../config/config.js';
import { adaptiveSettingsOf, rateFingerprint, readAdaptiveViews } from '../execution/adaptive-limiter.js';
import type { BatchRecord } from '../store/batch-store.js';
import type { Keys } from '../store/keys.js';
import type { ScriptedRedis } from '../store/scripts.js';
import { OPERATOR_ACTIONS, type OperatorAction, REPORTABLE, Status } from '../domain/lifecycle.js';

export type BatchAction = OperatorAction;

export interface BatchView extends BatchRecord {
  readonly pending: number;
  readonly ratePerSecond: number;
  readonly etaSeconds: number | null;
  /** Actions the batch's status allows now (the server still checks them atomically). */
  readonly actions: readonly BatchAction[];
  /** Whether report files can be downloaded (written, or can be rebuilt from Redis). */
  readonly reportReady: boolean;
  /** While the batch runs but waits out a pause a 429 asked for: when that pause ends (ms epoch); else null. */
  readonly pausedByApiUntil: number | null;
}

export function batchView(batch: BatchRecord, now = Date.now()): BatchView {
  const actions = (Object.keys(OPERATOR_ACTIONS) as BatchAction[]).filter(
    (a) => OPERATOR_ACTIONS[a].includes(batch.status) && (a !== 'rerun' || batch.counts.failed > 0) && (a !== 'restore' || restorable(batch)),
  );
  return {
    ...batch,
    pending: Math.max(0, batch.counts.valid - batch.done),
    ...rateAndEta(batch, now),
    actions,
    reportReady: REPORTABLE.has(batch.status),
    pausedByApiUntil: apiPauseOf(batch, now),
  };
}

/** Whether a restore can be offered: an unassigning batch whose report counted chats a restore would give back. */
export function restorable(batch: BatchRecord): boolean {
  return batch.action === 'unassign' && !batch.dryRun && (batch.restorable ?? 0) > 0;
}

/**
 * When the pause the API asked for ends, while it holds and the batch is running (its workers wait on it); else
 * null. The batch record keeps the end of the pauses its own 429s asked for; `pacerPauseUntil` (pacer.ts
 * `pausedUntil`) is the global pause, which another batch's 429 may have set or extended.
 */
export function apiPauseOf(batch: BatchRecord, now = Date.now(), pacerPauseUntil?: number): number | null {
  if (batch.status !== Status.running) return null;
  const until = Math.max(batch.apiPauseUntil ?? 0, pacerPauseUntil ?? 0);
  return until > now ? until : null;
}

/** "paused by the API until 14:03:07" (local time), or '' when no such pause holds. */
export function apiPauseText(until: number | null): string {
  return until === null ? '' : `paused by the API until ${new Date(until).toTimeString().slice(0, 8)}`;
}

/** Rate (chats/s since start) and ETA for a running batch. */
export function rateAndEta(batch: BatchRecord, now = Date.now()): { ratePerSecond: number; etaSeconds: number | null } {
  const elapsed = batch.startedAt ? Math.max(1, ((batch.finishedAt ?? now) - batch.startedAt) / 1000) : 0;
  const ratePerSecond = elapsed ? batch.done / elapsed : 0;
  const remaining = batch.counts.valid - batch.done;
  return { ratePerSecond: Math.round(ratePerSecond * 10) / 10, etaSeconds: ratePerSecond > 0 && remaining > 0 ? Math.ceil(remaining / ratePerSecond) : null };
}

/** One-paragraph human summary of a batch. */
export function describeBatch(batch: BatchRecord): string {
  const c = batch.counts;
  const lines = [
    `batch ${batch.id} (${batch.name}) — ${batch.status}${batch.reason ? `: ${batch.reason}` : ''}`,
    `  rows ${c.rows} = valid ${c.valid} + rejected ${c.rejected} + duplicates ${c.duplicates}`,
    `  valid ${c.valid}: succeeded ${c.succeeded}, failed ${c.failed}, cancelled ${c.cancelled}, skipped ${c.skipped}, pending ${Math.max(0, c.valid - batch.done)}`,
  ];
  if (batch.captureAssignees) lines.push('  agents captured before each unassign (--capture-assignees)');
  if (batch.restorable !== undefined && batch.action === 'unassign') {
    lines.push(
      batch.restorable > 0
        ? `  restorable: ${batch.restorable} chat(s) can be given back to their previous agent (\`bulk-unassign restore ${batch.id}\`)`
        : '  restorable: none (no previous agent known: the file had no agent column, and the batch ran without --capture-assignees)',
    );
  }
  const top = Object.entries(batch.reasons)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  if (top.length > 0) lines.push('  top failure reasons:', ...top.map(([r, n]) => `    ${String(n).padStart(6)}  ${r}`));
  if (batch.status === Status.awaitingApproval) lines.push(...heldLines(batch));
  if (batch.parent) lines.push(`  ${batch.kind === 'restore' ? 'restore' : 'rerun'} of ${batch.parent}`);
  if (batch.children.length) lines.push(`  reruns and restores: ${batch.children.join(', ')}`);
  return lines.join('\n');
}

/** What a batch held for approval would send, and how to let it go or end it. */
export function heldLines(batch: BatchRecord): string[] {
  const lines = [
    `  nothing has been sent; it would send ${batch.counts.valid} chat(s)${batch.sample.length > 0 ? `, the first ${batch.sample.length}:` : ''}`,
    ...batch.sample.map((chat) => `    ${chat}`),
    `  approve it: bulk-unassign approve ${batch.id}    reject it: bulk-unassign reject ${batch.id}`,
  ];
  if (batch.approvalExpiresAt)
    lines.push(`  unless approved first, it is rejected at ${new Date(batch.approvalExpiresAt).toISOString().slice(0, 16)}Z (APPROVAL_TIMEOUT_HOURS)`);
  return lines;
}

/** The global API rate as `status` and the console show it: the fixed limit, or the adaptive one's current and learned rates. */
export interface ApiRateView {
  readonly mode: 'fixed' | 'auto';
  /** Fixed: RATE_LIMIT_MAX per second (0 = no limit). Auto: RATE_LIMIT_CEILING per second. */
  readonly limitPerSecond: number;
  /** Auto: the rate calls are paced by now, and what was learned (null before any call). */
  readonly currentPerSecond: number | null;
  readonly learnedPerSecond: number | null;
  /** Auto: start | hold | probe | headers (null before any call). */
  readonly phase: string | null;
}

/**
 * Reads the API rate for this process's settings. With RATE_LIMIT_MAX=auto the state of this API and key, or,
 * for a process without the key (a console), the one used last under this prefix.
 */
export async function readApiRate(redis: ScriptedRedis, keys: Pick<Keys, 'rate' | 'rateIndex'>, config: ResolvedConfig): Promise<ApiRateView> {
  const perSecond = (n: number): number => Math.round(((n * 1000) / config.rateLimitDurationMs) * 100) / 100;
  if (!config.rateLimitAuto)
    return { mode: 'fixed', limitPerSecond: perSecond(config.rateLimitMax), currentPerSecond: null, learnedPerSecond: null, phase: null };
  const views = await readAdaptiveViews(redis, keys, adaptiveSettingsOf(config));
  const mine = config.apiKey === undefined ? undefined : rateFingerprint(config.baseUrl, config.apiKey);
  const view = views.find((v) => v.fingerprint === mine) ?? [...views].sort((a, b) => (b.usedAt ?? 0) - (a.usedAt ?? 0))[0];
  return {
    mode: 'auto',
    limitPerSecond: perSecond(config.rateLimitCeiling),
    currentPerSecond: view?.currentPerSecond ?? null,
    learnedPerSecond: view?.learnedPerSecond ?? null,
    phase: view?.phase ?? null,
  };
}

/** "API rate: fixed 1/s" or "API rate: auto, now 38/s, learned 40/s (probing; ceiling 100/s)". */
export function apiRateText(rate: ApiRateView): string {
  if (rate.mode === 'fixed') return `API rate: fixed ${rate.limitPerSecond === 0 ? 'no limit' : `${rate.limitPerSecond}/s`}`;
  if (rate.currentPerSecond === null) return `API rate: auto, nothing learned yet (ceiling ${rate.limitPerSecond}/s)`;
  const words: Record<string, string> = { start: 'climbing', hold: 'holding', probe: 'probing', headers: 'from the API headers' };
  return `API rate: auto, now ${rate.currentPerSecond}/s, learned ${rate.learnedPerSecond ?? 0}/s (${words[rate.phase ?? ''] ?? rate.phase}; ceiling ${rate.limitPerSecond}/s)`;
}
