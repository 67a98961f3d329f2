/**
 * A dry run: the counts, the first chats exactly as they would be sent, and the first rejected rows with
 * their reasons. No API call is made; the batch is kept (in its lifecycle's dry-run status) so its report
 * exists, and it expires like any batch.
 */
import { unassignBody } from '../execution/api-client.js';
import type { BatchRecord } from '../store/batch-store.js';
import { writeReport } from '../report/report.js';
import type { Context } from '../runtime/context.js';
import { chatFromKey, type RejectedRow } from '../domain/chat.js';
import { decodeRejectedRow, decodeStoredChat, hashField } from '../store/codecs.js';

const SAMPLE = 5;

export interface DryRunView {
  readonly batchId: string;
  readonly counts: BatchRecord['counts'];
  readonly wouldSend: readonly { line: number; body: Record<string, string> }[];
  readonly rejected: readonly RejectedRow[];
}

export async function dryRunView(ctx: Pick<Context, 'redis' | 'keys'>, batch: BatchRecord): Promise<DryRunView> {
  const k = ctx.keys.batch(batch.id);
  const chatKeys = await ctx.redis.lrange(k.order, 0, SAMPLE - 1);
  const inputs = chatKeys.length ? await ctx.redis.hmget(k.chats, ...chatKeys) : [];
  const wouldSend = chatKeys.map((key, i) => {
    const input = inputs[i];
    return { line: input ? decodeStoredChat(input, hashField(k.chats, key)).line : 0, body: unassignBody(chatFromKey(key)) };
  });
  const rejected = (await ctx.redis.lrange(k.rejected, 0, 9)).map((s, i) => decodeRejectedRow(s, `${k.rejected}[${i}]`));
  return { batchId: batch.id, counts: batch.counts, wouldSend, rejected };
}

/** A dry run's report is all there is of it: write it now, and start its retention clock. */
export async function completeDryRun(ctx: Context, batch: BatchRecord): Promise<void> {
  await writeReport(ctx, batch, ctx.config.reportsDir);
  await ctx.batches.expire(batch.id, ctx.config.resultsTtlDays * 86_400);
}

export function renderDryRun(view: DryRunView, reportsDir: string): string {
  const c = view.counts;
  const lines = [
    `dry run ${view.batchId}: no API call was made`,
    `  rows ${c.rows} = valid ${c.valid} + rejected ${c.rejected} + duplicates ${c.duplicates}`,
    `  would send ${c.valid} request(s) of POST /team-member/unassign, e.g.:`,
    ...view.wouldSend.map((s) => `    line ${s.line}: ${JSON.stringify(s.body)}`),
  ];
  if (view.rejected.length > 0) {
    lines.push(`  rejected rows${c.rejected > view.rejected.length ? ` (first ${view.rejected.length} of ${c.rejected})` : ''}:`);
    lines.push(...view.rejected.map((r) => `    line ${r.line}${r.column ? ` [${r.column}]` : ''}: ${r.reason}${r.raw ? ` (${JSON.stringify(r.raw)})` : ''}`));
  }
  lines.push(`  report: ${reportsDir}/${view.batchId}/summary.md`);
  return lines.join('\n');
}
