/**
 * Command-line parsing (node:util parseArgs, no framework) and the hand-written help text.
 */
import { parseArgs } from 'node:util';

import type { RunnerOptions } from '../config/config.js';
import { UsageError } from '../domain/errors.js';

export const OPTIONS = {
  waba: { type: 'string' },
  name: { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  wait: { type: 'boolean' },
  detach: { type: 'boolean' },
  watch: { type: 'boolean' },
  force: { type: 'boolean' },
  status: { type: 'string' },
  limit: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  demo: { type: 'boolean' },
  'no-worker': { type: 'boolean' },
  console: { type: 'boolean' },
  'default-country': { type: 'string' },
  'api-key-file': { type: 'string' },
  'base-url': { type: 'string' },
  'redis-url': { type: 'string' },
  prefix: { type: 'string' },
  'rate-max': { type: 'string' },
  'rate-duration-ms': { type: 'string' },
  concurrency: { type: 'string' },
  'max-attempts': { type: 'string' },
  'timeout-ms': { type: 'string' },
  'reports-dir': { type: 'string' },
  'include-permanent': { type: 'boolean' },
  'only-reason': { type: 'string' },
  'capture-assignees': { type: 'boolean' },
  'api-key': { type: 'string' },
  'seed-chats': { type: 'string' },
  'group-conflicts': { type: 'string' },
  'latency-ms': { type: 'string' },
  'fail-rate': { type: 'string' },
  'hidden-limit': { type: 'string' },
  'limit-schedule': { type: 'string' },
  'advertise-limit': { type: 'boolean' },
  cron: { type: 'string' },
  tz: { type: 'string' },
  overlap: { type: 'string' },
  inbox: { type: 'string' },
  'chat-status': { type: 'string' },
  'idle-hours': { type: 'string' },
  tag: { type: 'string' },
  agent: { type: 'string' },
  approve: { type: 'boolean' },
  'max-chats': { type: 'string' },
  'max-share': { type: 'string' },
  batch: { type: 'string' },
  actor: { type: 'string' },
  since: { type: 'string' },
  file: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export type Flags = ReturnType<typeof parseCommandLine>['flags'];

export function parseCommandLine(argv: readonly string[]) {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
    return { command: positionals[0], args: positionals.slice(1), flags: values };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${message.replace(/\. To specify.*$/s, '')} (see \`bulk-unassign --help\`)`);
  }
}

/** Flags that override configuration. Numbers are passed as strings: resolveConfig validates them. */
export function flagsToOptions(flags: Flags): RunnerOptions {
  const options: Record<string, unknown> = {
    baseUrl: flags['base-url'],
    redisUrl: flags['redis-url'],
    queuePrefix: flags.prefix,
    rateLimitMax: flags['rate-max'],
    rateLimitDurationMs: flags['rate-duration-ms'],
    workerConcurrency: flags.concurrency,
    maxAttempts: flags['max-attempts'],
    requestTimeoutMs: flags['timeout-ms'],
    reportsDir: flags['reports-dir'],
    defaultCountry: flags['default-country'],
    apiKeyFile: flags['api-key-file'],
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as RunnerOptions;
}

export const HELP = `bulk-unassign — clear agent assignments from DoubleTick chats in bulk, safely and with a report.

Usage: bulk-unassign <command> [options]

Commands
  run <csv>            Read the CSV, unassign every chat with in-process workers, wait, write the report.
                       The one-machine path.
  upload <csv>         Read the CSV and enqueue its chats for workers running elsewhere. --wait follows it.
  worker               Run a worker process (scale out by starting more, on any host, same REDIS_URL).
  status <batchId>     Progress, rate, ETA, top failure reasons. --json for data, --watch to follow live.
  report <batchId>     Rebuild the report files of a batch from Redis.
  batches              List batches, newest first. --status running|finished|..., --json.
  pause <batchId>      Take a batch's waiting chats off the queue (other batches carry on).
  resume <batchId>     Put a paused or stopped batch back on the queue (e.g. after fixing the API key).
  cancel <batchId>     Cancel waiting chats (counted as cancelled); chats in flight finish.
  approve <batchId>    Start a batch held for approval (more chats than MAX_BATCH_CHATS, or than its
                       schedule's --max-chats / --max-share). \`status\` shows why it is held and a sample.
  reject <batchId>     End a held batch without sending anything: every chat recorded as cancelled, report written.
  rerun <batchId>      New batch of the failed chats of a finished or cancelled batch (linked parent/child),
                       run here. Default: only failures a rerun can fix (5xx, 408, timeouts, network errors).
                       --include-permanent adds 400/404/422; --only-reason <text> filters by reason;
                       --detach only enqueues it for workers elsewhere.
  restore <batchId>    Undo: new batch (linked parent/child) that assigns every chat the batch unassigned back to
                       the agent it had, run here; a chat assigned to someone since is left alone (skipped). Needs
                       the previous agents: GET /chats (schedules), a CSV agent column, or --capture-assignees.
                       Refused for a restore; a second restore needs --force. --detach, --dry-run, --name as rerun.
  serve                Web console + HTTP API (upload, progress, reports, rerun; Bull Board at /admin/queues)
                       with an in-process worker. Needs CONSOLE_TOKEN or CONSOLE_USERS_FILE; --port (3000),
                       --host (127.0.0.1), --no-worker (workers run elsewhere), --demo (loopback only: makes a
                       token, prints the URL).
  demo                 Run the whole pipeline against a bundled stand-in API (no account needed).
                       --console keeps it running with the web console open on it until Ctrl-C.
  mock-api             Serve the stand-in DoubleTick API (--port, --api-key, --rate-max, --seed-chats, --group-conflicts, --fail-rate,
                       --latency-ms: added to every unassign answer).
                       --hidden-limit <n>: a limit of n calls/s it does not advertise (429 over it);
                       --limit-schedule 40@0s,10@20s,30@40s: that limit changing over time;
                       --advertise-limit: say the hidden limit in RateLimit-* headers.
  schedule set [name]  Nightly cleanup without a CSV: --cron "0 2 * * *" --tz Asia/Kolkata and a source (below).
                       Stored in Redis; \`worker\` processes run it, once per tick however many there are.
  schedule show|remove|run-now [name]   List / delete a schedule, or run it now (--dry-run previews, --wait).
  audit                Who did what, when, from where (uploads, pauses, reruns, schedules, console log-ins),
                       oldest first: --batch <id>, --actor <name>, --since <2026-11-25|24h|7d>, --limit <n>,
                       --json (one JSON object per line).
  console-user add <name>   Add a named console operator: prints a new token once, stores only its hash in
                       CONSOLE_USERS_FILE (or --file <path>, created 0600). Also: console-user remove <name> | list.

Input options
  --waba <number>            Business (WABA) number for rows whose file has no wabaNumber column.
  --default-country <CC>     Country (ISO, e.g. IN) for numbers written without a country code.
  --name <text>              Batch name shown in lists and reports (default: the batch id).
  --dry-run                  Validate and report what would be sent; no API call is made.
  --force                    Run a file again even though the same content ran recently; restore: restore again.
  --approve                  run/upload: start even above MAX_BATCH_CHATS (not held for approval; audited).
  --capture-assignees        run/upload, schedule set: read each chat's agent (GET /customer/details) right before
                             its unassign call, so \`restore\` can give it back. Doubles the API calls (same rate
                             limit); a chat found without an agent is skipped, not called. Not needed when the
                             CSV has an agent column (assignedUserNumber, agent, agentPhone ...).
  --include-permanent        rerun: also rerun permanent failures (400/404/422).
  --only-reason <text>       rerun: only failures whose reason contains <text> (case-insensitive).
  --detach                   rerun, restore: enqueue for workers elsewhere instead of running here.

Schedule options (schedule set; name defaults to "nightly"; batches are named <name>-<date in --tz>)
  --cron <pattern>           When: 5 cron fields (6 with seconds first), read in --tz.
  --tz <zone>                IANA time zone, e.g. Asia/Kolkata (default: this machine's).
  --chat-status <status>     Source GET /chats: all|unread|unresolved|done|waiting_for_response|open|open_cart.
  --idle-hours <h>           ... and no message for at least h hours.
  --tag <a,b>  --agent <number>  --waba <a,b>    ... with any of these tags / of this agent / on these numbers.
                             Only chats that still have an agent are unassigned; every filter is re-checked.
  --inbox <dir>              Source: every *.csv in dir becomes a batch (--waba for files without the column);
                             done files move to dir/processed/, unreadable ones to dir/rejected/ + .error.txt.
  --overlap skip|wait        If the previous scheduled batch still runs: skip this tick (default) or wait.
  --max-chats <n>            Hold a run's batch for approval above n chats (as MAX_BATCH_CHATS does for all).
  --max-share <fraction>     Hold it when it selects more than this share, in (0, 1], of the chats listed.

Runtime options (each overrides its environment variable)
  --base-url <url>           DOUBLETICK_BASE_URL        default https://public.doubletick.io
  --redis-url <url>          REDIS_URL                  default redis://127.0.0.1:6379
  --prefix <name>            QUEUE_PREFIX               default bulk-unassign
  --rate-max <n|auto>        RATE_LIMIT_MAX             default 1   (calls per window, all workers together;
                             auto: find the API's limit from RATE_LIMIT_START (1) up to RATE_LIMIT_CEILING (100),
                             remembered per API and key for RATE_LIMIT_MEMORY_HOURS (24); costs a few 429s)
  --rate-duration-ms <ms>    RATE_LIMIT_DURATION_MS     default 1000
  --concurrency <n>          WORKER_CONCURRENCY         default 4
  --max-attempts <n>         MAX_ATTEMPTS               default 5
  --timeout-ms <ms>          REQUEST_TIMEOUT_MS         default 15000
  --reports-dir <dir>        REPORTS_DIR                default ./reports
  --api-key-file <path>      DOUBLETICK_API_KEY_FILE    file holding the API key (e.g. a Docker secret)
  --json                     Machine-readable output where the output is data.
  -q, --quiet                No progress output.

Environment
  DOUBLETICK_API_KEY (required to call the API, or DOUBLETICK_API_KEY_FILE; never logged or stored),
  RESULTS_TTL_DAYS (30), MAX_BATCH_CHATS (10000; a larger batch waits for \`approve\`; 0 = off),
  APPROVAL_TIMEOUT_HOURS (72; a held batch not approved by then is rejected),
  DUPLICATE_WINDOW_HOURS (24), MAX_FILE_MB (512), DEFAULT_COUNTRY, LOG_LEVEL (warn unless set),
  CONSOLE_TOKEN (serve: the console's access token, ≥ 16 characters; or CONSOLE_TOKEN_FILE, a file holding it,
  e.g. a Docker secret; its operator is called "console"), CONSOLE_USERS_FILE (serve: named operators, one
  name:hash line each, see console-user), BULK_UNASSIGN_ACTOR (your name in the audit trail; default user@host),
  AUDIT_RETENTION_DAYS (365), TRUST_PROXY (serve: behind a reverse
  proxy: true, a hop count or the proxies' addresses), NOTIFY_WEBHOOK_URL (a
  scheduled batch's summary JSON is POSTed there when it finishes, retried with backoff),
  LOCK_DURATION_MS (worker job lock; default max(30 s, 2 × timeout + 5 s), at least timeout + 1 s: a killed
  worker's jobs are re-run this long after it died), REDIS_CLUSTER (false; true: REDIS_URL is any one node
  of a Redis Cluster). A .env file in the current directory is read too; flags > environment > .env > defaults.

Exit codes
  0  every valid chat unassigned and no row rejected
  1  finished, but some chats failed or some rows were rejected (see the report)
  2  usage, configuration, input or environment error (e.g. a reports folder that cannot be written:
     the batch itself finished; \`report <id>\` writes the report once the folder is fixed)
  3  stopped: API key rejected, cancelled, or interrupted
  4  held for approval: nothing sent; \`approve <batchId>\` starts it, \`reject <batchId>\` ends it
  130 a second Ctrl-C forced the exit (a batch keeps its place in the queue)
  70 internal error (a bug: please report it with DEBUG=1 output)

Examples
  export DOUBLETICK_API_KEY=key_...
  bulk-unassign run chats.csv --waba 919000000000
  bulk-unassign run chats.csv --dry-run                 # check a file first
  bulk-unassign upload big.csv --name "Q4 cleanup" && bulk-unassign worker
  bulk-unassign status 20261125-020000-ab12cd --watch
  bulk-unassign resume 20261125-020000-ab12cd           # after fixing a revoked key
  bulk-unassign rerun 20261125-020000-ab12cd            # retry what failed for fixable reasons
  bulk-unassign approve 20261125-020000-ab12cd          # let a batch held for approval run
  bulk-unassign run chats.csv --capture-assignees       # keep each chat's agent, so it can be undone
  bulk-unassign restore 20261125-020000-ab12cd          # undo: give the chats back to their agents
  bulk-unassign schedule set --cron "0 2 * * *" --tz Asia/Kolkata --chat-status done --idle-hours 12
  bulk-unassign audit --batch 20261125-020000-ab12cd    # who uploaded, paused, cancelled it
  bulk-unassign console-user add alice --file /etc/bulk-unassign/console-users
`;
