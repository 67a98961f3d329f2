/**
 * `audit [--batch <id>] [--actor <name>] [--since <ISO|24h|7d>] [--limit <n>] [--json]`: who did what, when,
 * from where — oldest first, as aligned text or JSON lines.
 */
import type { Flags } from '../args.js';
import { UsageError } from '../../domain/errors.js';
import { auditJsonLines, auditQuery, listAudit, renderAudit } from '../../app/audit.js';
import { configFrom, type Io, openContext } from './common.js';

export async function cmdAudit(args: readonly string[], flags: Flags, io: Io): Promise<number> {
  if (args.length > 0)
    throw new UsageError(`\`audit\` takes no arguments, got ${JSON.stringify(args[0])}: filter with --batch <id>, --actor <name>, --since 24h`);
  const limit = flags.limit === undefined ? undefined : Number(flags.limit);
  const input = { batch: flags.batch, actor: flags.actor, since: flags.since, limit };
  auditQuery(input); // a bad filter is a usage error before Redis is touched
  const ctx = await openContext(configFrom(flags, io));
  try {
    const entries = await listAudit(ctx, input);
    if (flags.json) {
      if (entries.length > 0) io.out(auditJsonLines(entries));
    } else io.out(renderAudit(entries));
    return 0;
  } finally {
    await ctx.close();
  }
}
