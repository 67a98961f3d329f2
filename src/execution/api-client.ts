/**
 * The DoubleTick HTTP client (got 14). Keep-alive agents, one timeout, no got-level retries (BullMQ owns
 * retries so attempts are counted in one place), the API key only in a header (`Authorization`, or
 * `x-public-api-key` for the group listing, whose spec names that header instead), and no
 * redirect followed: got would re-send the request body (phone numbers) to whatever the Location names and
 * hand back that origin's answer as if the API had given it. A 3xx is returned as it is, and classify.ts
 * stops the batch on it.
 */
import http from 'node:http';
import https from 'node:https';

import got, { type Got, RequestError } from 'got';

import type { ApiOutcome } from './classify.js';
import type { ChatTarget } from '../domain/chat.js';

export interface ApiClientOptions {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly requestTimeoutMs: number;
  /** Sockets per host; enough for the worker's concurrency. */
  readonly maxSockets?: number;
}

/** The body the contract asks for: customerPhoneNumber + wabaNumber, or groupId alone. */
export function unassignBody(chat: ChatTarget): Record<string, string> {
  return chat.kind === 'individual' ? { customerPhoneNumber: chat.customerPhoneNumber, wabaNumber: chat.wabaNumber } : { groupId: chat.groupId };
}

/**
 * The body of POST /team-member/assign: the chat as for unassign, the agent, and `reassign`. A restore sends
 * `reassign: false`, so that a chat someone assigned since the unassign is never taken from its new agent.
 */
export function assignBody(chat: ChatTarget, agent: string, reassign: boolean): Record<string, string | boolean> {
  return { ...unassignBody(chat), assignedUserPhoneNumber: agent, reassign };
}

/** Query for GET /chats (see doubletick-api.md). */
export interface ListChatsQuery {
  readonly limit?: number;
  readonly status?: string;
  readonly tags?: string;
  readonly assignedUserPhone?: string;
  readonly wabaNumbers?: string;
  readonly nextChatId?: string;
  readonly nextChatTimestamp?: number;
}

/** Query for GET /whatsapp/wa-group/list (see doubletick-api.md): one WABA number, and the cursor of the previous page. */
export interface ListGroupsQuery {
  readonly wabaNumber: string;
  readonly lastGroupId?: string;
  /** ISO 8601, as the previous page gave it. */
  readonly olderThanTimestamp?: string;
}

export interface DoubleTickApi {
  /** POST /team-member/unassign for one chat. Never throws for HTTP or network failures: returns the outcome. */
  unassign(chat: ChatTarget): Promise<ApiOutcome>;
  /** POST /team-member/assign for one chat (see `assignBody`). Same contract as `unassign`. */
  assign(chat: ChatTarget, agent: string, options: { readonly reassign: boolean }): Promise<ApiOutcome>;
  /** GET /customer/details of a one-to-one chat: its customer, and the agent it is assigned to. Same contract as `unassign`. */
  customerDetails(chat: Extract<ChatTarget, { kind: 'individual' }>): Promise<ApiOutcome>;
  /** GET /chats, one page. Same contract as `unassign`. */
  listChats(query: ListChatsQuery): Promise<ApiOutcome>;
  /** GET /whatsapp/wa-group/list, one page of one WABA number's groups. Same contract as `unassign`. */
  listGroups(query: ListGroupsQuery): Promise<ApiOutcome>;
  close(): void;
}

function parseBody(text: string): { body: unknown; json: boolean } {
  if (text === '') return { body: undefined, json: false };
  try {
    return { body: JSON.parse(text), json: true };
  } catch {
    return { body: { message: text.slice(0, 200) }, json: false };
  }
}

/** An HTML page rather than an API answer: said so by its content type, or a non-JSON body opening with `<`. */
function isHtml(contentType: string | undefined, text: string, json: boolean): boolean {
  if (contentType !== undefined && /^\s*text\/html\b/i.test(contentType)) return true;
  return !json && text.trimStart().startsWith('<');
}

function headerOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The rate-limit headers of an answer (`ratelimit*`, `x-ratelimit-*`), or undefined when it has none. */
function rateLimitHeadersOf(headers: Record<string, string | string[] | undefined>): Record<string, string> | undefined {
  let found: Record<string, string> | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('ratelimit') && !name.startsWith('x-ratelimit')) continue;
    const first = headerOf(value);
    if (first !== undefined) (found ??= {})[name] = first.slice(0, 200);
  }
  return found;
}

async function send(request: () => Promise<{ statusCode: number; body: string; headers: Record<string, string | string[] | undefined> }>): Promise<ApiOutcome> {
  const started = performance.now();
  try {
    const response = await request();
    const retryAfter = headerOf(response.headers['retry-after']);
    const location = headerOf(response.headers.location);
    const { body, json } = parseBody(response.body);
    const rateLimitHeaders = rateLimitHeadersOf(response.headers);
    return {
      kind: 'response',
      statusCode: response.statusCode,
      body,
      latencyMs: Math.round(performance.now() - started),
      ...(retryAfter === undefined ? {} : { retryAfter }),
      ...(location === undefined ? {} : { location }),
      ...(rateLimitHeaders === undefined ? {} : { rateLimitHeaders }),
      ...(isHtml(headerOf(response.headers['content-type']), response.body, json) ? { html: true } : {}),
    };
  } catch (error) {
    const code = error instanceof RequestError ? error.code : 'ERR_UNKNOWN';
    // got's messages name the URL but never the headers, so they are safe to record.
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'network', code, message, latencyMs: Math.round(performance.now() - started) };
  }
}

/** Only the parameters that are set, as got's searchParams. */
const searchParamsOf = (query: object): Record<string, string | number> =>
  Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Record<string, string | number>;

export function makeApiClient(options: ApiClientOptions): DoubleTickApi {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
  const agent = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
  const client: Got = got.extend({
    prefixUrl: options.baseUrl,
    headers: { authorization: options.apiKey, 'user-agent': 'bulk-unassign' },
    timeout: { request: options.requestTimeoutMs },
    retry: { limit: 0 },
    followRedirect: false,
    throwHttpErrors: false,
    agent,
  });
  return {
    unassign: (chat) => send(() => client.post('team-member/unassign', { json: unassignBody(chat) })),
    assign: (chat, agent, { reassign }) => send(() => client.post('team-member/assign', { json: assignBody(chat, agent, reassign) })),
    customerDetails: (chat) =>
      send(() => client.get('customer/details', { searchParams: { phoneNumber: chat.customerPhoneNumber, wabaNumber: chat.wabaNumber } })),
    listChats: (query) => send(() => client.get('chats', { searchParams: searchParamsOf(query) })),
    // The group API's spec authenticates with `x-public-api-key`, not `Authorization`: the key goes in that header
    // alone (undefined drops the client's default), so it is never sent twice.
    listGroups: (query) =>
      send(() =>
        client.get('whatsapp/wa-group/list', {
          searchParams: searchParamsOf(query),
          headers: { authorization: undefined, 'x-public-api-key': options.apiKey },
        }),
      ),
    close: () => {
      agent.http.destroy();
      agent.https.destroy();
    },
  };
}
