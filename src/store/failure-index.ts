/**
 * The failed chats of a batch in file order, streamed: pass 1 scans the results (HSCAN) and puts every selected
 * failure into a ZSET scored by its input line; pass 2 reads the ZSET a page at a time with each chat's result
 * and input row. Memory stays at a page of chats whatever the batch size. (A 100k-failure batch held in memory to
 * be sorted took ~110 MB; a million failures — a bad WABA number on every row, or an outage — over a GB.)
 * Used by the report (failed.csv) and by rerun (the child batch's rows).
 */
import { randomBytes } from 'node:crypto';

import { HOUR } from '../config/config.js';
import { type ChatResult, decodeResult, decodeStoredChat, hashField, type StoredChat } from './codecs.js';
import type { Keys } from './keys.js';
import type { ResultStore } from './result-store.js';
import type { ScriptedRedis } from './scripts.js';
import { chatFromKey } from '../domain/chat.js';

// The stored row's shape and decoder live with the other stored values (codecs.ts); importers keep this path.
export type { StoredChat } from './codecs.js';

export interface Failure {
  readonly key: string;
  readonly result: ChatResult;
  readonly input: StoredChat;
}

export interface FailureIndex {
  /** How many failed chats `select` took (each once). */
  readonly selected: number;
  /** The selected failures by line, then chat key; can be read more than once while the index exists. */
  inFileOrder(): AsyncIterable<Failure>;
  /** Deletes the index (it also expires by itself if its owner dies). */
  drop(): Promise<void>;
}

interface IndexDeps {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly results: ResultStore;
}

/** Failed chats handled per Redis round trip. */
const PAGE = 1000;
/** How long an index outlives an owner that died before dropping it. */
const INDEX_TTL_MS = HOUR;

/** Cells for a chat that has no stored row (rows are kept for failed chats, so this is only a fallback). */
function syntheticCells(chatKey: string): Record<string, string> {
  const chat = chatFromKey(chatKey);
  return chat.kind === 'group' ? { groupId: chat.groupId } : { customerPhoneNumber: chat.customerPhoneNumber, wabaNumber: chat.wabaNumber };
}

function storedChat(chatsKey: string, key: string, json: string | null | undefined): StoredChat {
  return json ? decodeStoredChat(json, hashField(chatsKey, key)) : { line: 0, cells: syntheticCells(key) };
}

/** Pass 1. HSCAN may repeat an entry: ZADD keeps each chat once, so `selected` (ZCARD) is exact. */
async function fill(deps: IndexDeps, batchId: string, order: string, select: (r: ChatResult) => boolean): Promise<number> {
  const chats = deps.keys.batch(batchId).chats;
  let page: string[] = [];
  const flush = async (): Promise<void> => {
    if (page.length === 0) return;
    const inputs = await deps.redis.hmget(chats, ...page);
    const scored = page.flatMap((key, i) => [storedChat(chats, key, inputs[i]).line, key]);
    await deps.redis
      .multi()
      .zadd(order, ...scored)
      .pexpire(order, INDEX_TTL_MS)
      .exec();
    page = [];
  };
  for await (const [key, result] of deps.results.scan(batchId)) {
    if (result.state !== 'failed' || !select(result)) continue;
    page.push(key);
    if (page.length >= PAGE) await flush();
  }
  await flush();
  return Number(await deps.redis.zcard(order));
}

/** The failures of these chats, in this order, a page of results and inputs per round trip. */
async function* failuresOf(deps: IndexDeps, batchId: string, ordered: readonly string[]): AsyncIterable<Failure> {
  const k = deps.keys.batch(batchId);
  for (let i = 0; i < ordered.length; i += PAGE) {
    const page = ordered.slice(i, i + PAGE);
    const [results, inputs] = await Promise.all([deps.redis.hmget(k.results, ...page), deps.redis.hmget(k.chats, ...page)]);
    for (const [j, key] of page.entries()) {
      const text = results[j];
      if (text) yield { key, result: decodeResult(text, hashField(k.results, key)), input: storedChat(k.chats, key, inputs[j]) };
    }
  }
}

/**
 * Pass 2: by line, then chat key (localeCompare, within one line: only chats without a stored row share one, at
 * line 0). Only the current line's chats and one page wait in memory.
 */
async function* inFileOrder(deps: IndexDeps, batchId: string, order: string): AsyncIterable<Failure> {
  let ready: string[] = [];
  let sameLine: string[] = [];
  let line = NaN;
  const closeLine = (): void => {
    ready.push(...sameLine.sort((a, b) => a.localeCompare(b)));
    sameLine = [];
  };
  for (let start = 0; ; start += PAGE) {
    const flat = await deps.redis.zrange(order, start, start + PAGE - 1, 'WITHSCORES');
    for (let i = 0; i < flat.length; i += 2) {
      const score = Number(flat[i + 1]);
      if (score !== line) closeLine();
      line = score;
      sameLine.push(flat[i] as string);
    }
    if (ready.length >= PAGE) {
      yield* failuresOf(deps, batchId, ready);
      ready = [];
    }
    if (flat.length < PAGE * 2) break;
  }
  closeLine();
  yield* failuresOf(deps, batchId, ready);
}

/** Builds the index of a batch's failed chats that `select` takes (default: all). The caller must `drop()` it (try/finally). */
export async function indexFailures(deps: IndexDeps, batchId: string, select: (r: ChatResult) => boolean = () => true): Promise<FailureIndex> {
  const order = deps.keys.failureIndex(batchId, randomBytes(4).toString('hex'));
  const drop = async (): Promise<void> => {
    await deps.redis.del(order);
  };
  try {
    const selected = await fill(deps, batchId, order, select);
    return { selected, inFileOrder: () => inFileOrder(deps, batchId, order), drop };
  } catch (error) {
    await drop();
    throw error;
  }
}
