/**
 * Console test helpers: a real console (`bulk-unassign serve` from dist/, on a free loopback port, with its
 * in-process worker) over a TestEnv's prefix, stand-in server and settings; the fixture fixtures/console.csv
 * with its scripted failures; and an SSE reader. Real HTTP only (global fetch).
 *
 * Why a subprocess and not startConsole() in the test process: Bull Board's Fastify adapter loads
 * @fastify/static, which require()s an ESM-only package (content-disposition@3). Node 20.19+ allows that, but
 * Jest's module runtime does not before Node 24.9, so the console cannot be imported under Jest here.
 * Build first (`npx tsc -p tsconfig.json`), as for every CLI-subprocess test.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { MockFaults } from '../../src/devtools/mock-api.js';
import type { TestEnv } from './harness.js';
import { killAllChildren, type SpawnedCli, spawnCli } from './processes.js';

export const CONSOLE_TOKEN = 'console-test-token-0123456789';
export const CONSOLE_FIXTURE = fileURLToPath(new URL('../../fixtures/console.csv', import.meta.url));

/** Digits of the i-th (1-based) customer number of fixtures/console.csv. */
export function fixturePhone(i: number): string {
  return `9198123${String(40_000 + i)}`;
}

/**
 * The fixture's scripted failures: rows 3 and 9 are refused (422, permanent); rows 5 and 11 answer 503 more
 * often than MAX_ATTEMPTS allows (transient: a default rerun retries them). 20 valid chats, 1 rejected row.
 */
export const FIXTURE_FAULTS: MockFaults = {
  rejectNumbers: [fixturePhone(3), fixturePhone(9)],
  flaky: { [fixturePhone(5)]: 50, [fixturePhone(11)]: 50 },
};
export const FIXTURE = { rows: 21, valid: 20, rejected: 1, permanent: 2, transient: 2 } as const;

export function fixtureText(): string {
  return readFileSync(CONSOLE_FIXTURE, 'utf8');
}

export interface TestConsole {
  readonly url: string;
  readonly process: SpawnedCli;
  /** SIGINT (the graceful stop) and wait for the exit; returns the exit code. */
  close(): Promise<number | null>;
  /** fetch against the console with the token (unless `auth: false`); redirects are not followed. */
  request(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  json<T = Record<string, unknown>>(path: string, init?: RequestInit & { auth?: boolean }): Promise<{ status: number; body: T }>;
  upload(text: string, fileName: string, fields?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
}

/** `bulk-unassign serve --port 0` for the env; resolves once it listens. `extraEnv` adds settings (MAX_FILE_MB …). */
export async function startTestConsole(env: TestEnv, options: { worker?: boolean; extraEnv?: Record<string, string> } = {}): Promise<TestConsole> {
  const args = ['serve', '--port', '0', ...(options.worker === false ? ['--no-worker'] : [])];
  const child = spawnCli(env, args, { CONSOLE_TOKEN, ...options.extraEnv });
  await child.waitForOutput('console listening on ');
  const url = /console listening on (http:\/\/\S+)/.exec(child.output())?.[1];
  if (!url) throw new Error(`no URL in serve output:\n${child.output()}`);
  const request: TestConsole['request'] = (path, init = {}) => {
    const { auth = true, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (auth && !headers.has('authorization')) headers.set('authorization', `Bearer ${CONSOLE_TOKEN}`);
    return fetch(`${url}${path}`, { ...rest, headers, redirect: 'manual' });
  };
  const json: TestConsole['json'] = async (path, init) => {
    const response = await request(path, init);
    return { status: response.status, body: (await response.json()) as never };
  };
  return {
    url,
    process: child,
    close: async () => {
      child.kill('SIGINT');
      return (await child.exited).code;
    },
    request,
    json,
    upload: async (text, fileName, fields = {}) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append('file', new Blob([text], { type: 'text/csv' }), fileName);
      return json('/api/batches', { method: 'POST', body: form });
    },
  };
}

export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/**
 * The events of a server-sent event stream as they come, until it ends (or `timeoutMs`, when given). A stream that
 * does not end by itself (a running batch's) is left by breaking out of the loop.
 */
export async function* sseEvents(response: Response, timeoutMs?: number): AsyncGenerator<SseEvent> {
  if (!response.body) throw new Error('no body');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) yield { event, data: JSON.parse(data) as unknown };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a server-sent event stream until it ends (or `timeoutMs`), returning every event in order. */
export async function readEvents(response: Response, timeoutMs = 30_000): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of sseEvents(response, timeoutMs)) events.push(event);
  return events;
}

/** Closes a console, any CLI child still running and the env, whatever state a failed test left them in. */
export async function closeTestConsole(con: TestConsole | undefined, env: TestEnv | undefined): Promise<void> {
  await con?.close();
  await killAllChildren();
  await env?.cleanup();
}
