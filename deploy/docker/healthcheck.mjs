/**
 * The image's HEALTHCHECK (see Dockerfile): is this container's bulk-unassign process alive? It is a liveness
 * check, not the fleet's readiness:
 *
 *  - `serve` (and `demo --console`): GET /healthz on the console's port must answer, with 200 or with its 503.
 *    /healthz answers 503 when Redis is unreachable or no worker is connected (src/console/health.ts). Restarting
 *    the console fixes neither, and the console is where an operator looks when it happens, so a 503 still counts
 *    as alive; those fleet conditions are alerted on from /metrics instead (deploy/prometheus/alerts.yml).
 *    `--strict` demands 200, for a console that must not be marked healthy without a worker.
 *  - any other command (`worker`, `run`, ...) serves no HTTP: healthy while the process runs (the container stops
 *    when it exits).
 *
 * Usage: node deploy/docker/healthcheck.mjs [--strict] [--proc <dir>] [<url>]
 *   <url>          probe this URL instead of finding the console's port (test/integration/monitoring.test.ts)
 *   --proc <dir>   where to look for the process (default /proc; the tests give a made-up one)
 * Exit code 0 = healthy, 1 = unhealthy (what Docker expects); one line on stdout says why, for `docker inspect`.
 * Plain Node, no dependencies: the image has no curl or wget, and nothing here may need a build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Under the Dockerfile's `--timeout=5s`, so that a slow answer is reported as such instead of the probe being killed. */
const TIMEOUT_MS = 4000;
const DEFAULT_PORT = '3000';

function parseOptions(argv) {
  const options = { strict: false, proc: '/proc', url: undefined };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--strict') options.strict = true;
    else if (argv[i] === '--proc') options.proc = argv[++i];
    else options.url = argv[i];
  }
  return options;
}

/** The argv of the bulk-unassign process (lowest pid first: PID 1 when the entrypoint runs node directly), or undefined. */
function findCli(procDir) {
  const pids = readdirSync(procDir)
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .sort((a, b) => Number(a) - Number(b));
  for (const pid of pids) {
    let argv;
    try {
      argv = readFileSync(join(procDir, pid, 'cmdline'), 'utf8')
        .split('\0')
        .filter(Boolean);
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    const entry = argv.findIndex((arg) => arg.endsWith('dist/src/main.js') || arg.endsWith('/bulk-unassign'));
    if (entry >= 0) return { pid, args: argv.slice(entry + 1) };
  }
  return undefined;
}

/** `--name value` or `--name=value`. */
function flag(args, name) {
  const at = args.indexOf(`--${name}`);
  if (at >= 0) return args[at + 1];
  return args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** The /healthz URL of a console command line, or undefined when the command serves no HTTP. */
function consoleUrl(args) {
  const serves = args.includes('serve') || (args.includes('demo') && args.includes('--console'));
  if (!serves) return undefined;
  const host = flag(args, 'host');
  // A console bound to every address (as docker-compose.yml runs it) is reached on loopback from inside.
  const probeHost = host === undefined || host === '0.0.0.0' || host === '::' || host === 'localhost' ? '127.0.0.1' : host;
  return `http://${probeHost.includes(':') ? `[${probeHost}]` : probeHost}:${flag(args, 'port') ?? DEFAULT_PORT}/healthz`;
}

/** /healthz's own 503 body (src/console/health.ts), as opposed to a 503 from something else on the port. */
function isHealthBody(text) {
  try {
    const body = JSON.parse(text);
    return typeof body === 'object' && body !== null && body.ok === false && typeof body.redis === 'string';
  } catch {
    return false;
  }
}

async function probe(url, strict) {
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    return { healthy: false, line: `unhealthy: ${url} did not answer (${error.cause?.code ?? error.name})` };
  }
  const body = (await response.text().catch(() => '')).slice(0, 200);
  const healthy = response.status === 200 || (!strict && response.status === 503 && isHealthBody(body));
  return { healthy, line: `${healthy ? 'healthy' : 'unhealthy'}: ${url} answered ${response.status} ${body}` };
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  if (options.url) return probe(options.url, options.strict);
  const cli = findCli(options.proc);
  if (!cli) return { healthy: false, line: 'unhealthy: no bulk-unassign process (dist/src/main.js) is running in this container' };
  const url = consoleUrl(cli.args);
  // The line names no argument: --redis-url may carry a password, and this line is kept by `docker inspect`.
  if (!url) return { healthy: true, line: `healthy: bulk-unassign (pid ${cli.pid}) runs a command that serves no HTTP, such as worker` };
  return probe(url, options.strict);
}

const result = await main();
process.stdout.write(`${result.line}\n`);
process.exitCode = result.healthy ? 0 : 1;
