/**
 * Watches the unassign calls between the in-process workers and the in-process stand-in server, with timestamps,
 * through Node's built-in HTTP diagnostics channels: when each request reached the server, and when the client
 * received each 429 and what its Retry-After said. Nothing is mocked or wrapped: the channels only observe.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';

const UNASSIGN_PATH = '/team-member/unassign';

/** One 429 as the client saw it. Times are `performance.now()` ms. */
export interface Seen429 {
  readonly receivedAt: number;
  readonly retryAfter: string | undefined;
  /** Earliest time the client may call again: Retry-After (seconds or HTTP date), else `fallbackPauseMs` later. */
  readonly until: number;
}

export interface HttpRecorder {
  /** Arrival time at the server of every unassign request, in order. */
  readonly arrivals: number[];
  readonly limited: Seen429[];
  /**
   * Requests that reached the server more than `slackMs` after the client received a 429 and before its
   * Retry-After ran out. `slackMs` covers calls already on their way when the 429 came back. It is counted in time
   * the event loop ran: workers and server share this process, so while the loop is stalled (a long GC on a busy
   * machine) a request already sent is not read, and no worker can act on the 429 either.
   */
  violations(slackMs: number): { arrivedAt: number; limited: Seen429 }[];
  /** The event-loop stalls seen while recording: [start, end] in `performance.now()` ms. */
  readonly stalls: readonly (readonly [number, number])[];
  /** Most requests that arrived inside any single pause (in-flight ones included). */
  maxArrivalsInsidePause(): number;
  stop(): void;
}

/** The loop is sampled this often; a sample later than STALL_MS after the previous one marks a stall. */
const TICK_MS = 5;
const STALL_MS = 20;

/**
 * @param port the stand-in server's port (other servers in the process are ignored)
 * @param fallbackPauseMs the shortest pause the client takes on its own when a 429 has no usable Retry-After
 */
export function recordHttp(port: number, fallbackPauseMs = 0): HttpRecorder {
  const arrivals: number[] = [];
  const limited: Seen429[] = [];
  const stalls: [number, number][] = [];
  let lastTick = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    if (now - lastTick > STALL_MS) stalls.push([lastTick, now]);
    lastTick = now;
  }, TICK_MS);
  ticker.unref();
  /** ms of [from, to] during which the loop was stalled. */
  const stalledWithin = (from: number, to: number): number =>
    stalls.reduce((sum, [start, end]) => sum + Math.max(0, Math.min(end, to) - Math.max(start, from)), 0);
  const onRequest = (message: unknown): void => {
    const { request, server } = message as { request: IncomingMessage; server: { address(): unknown } };
    const address = server.address() as { port?: number } | null;
    if (address?.port === port && request.url === UNASSIGN_PATH) arrivals.push(performance.now());
  };
  const onResponse = (message: unknown): void => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    if (request.path !== UNASSIGN_PATH || request.getHeader('host') !== `127.0.0.1:${port}` || response.statusCode !== 429) return;
    const receivedAt = performance.now();
    const header = response.headers['retry-after'];
    let waitMs = fallbackPauseMs;
    if (header !== undefined && /^\d+$/.test(header)) waitMs = Number(header) * 1000;
    else if (header !== undefined) waitMs = Date.parse(header) - Date.now();
    limited.push({ receivedAt, retryAfter: header, until: receivedAt + waitMs });
  };
  subscribe('http.server.request.start', onRequest);
  subscribe('http.client.response.finish', onResponse);
  return {
    arrivals,
    limited,
    violations(slackMs) {
      const out: { arrivedAt: number; limited: Seen429 }[] = [];
      for (const l of limited) {
        for (const a of arrivals) {
          // Past the slack in time the loop ran (stalls left out), and before Retry-After ran out.
          if (a < l.until && a - l.receivedAt - stalledWithin(l.receivedAt, a) > slackMs) out.push({ arrivedAt: a, limited: l });
        }
      }
      return out;
    },
    maxArrivalsInsidePause() {
      return Math.max(0, ...limited.map((l) => arrivals.filter((a) => a > l.receivedAt && a < l.until).length));
    },
    stalls,
    stop() {
      clearInterval(ticker);
      unsubscribe('http.server.request.start', onRequest);
      unsubscribe('http.client.response.finish', onResponse);
    },
  };
}
