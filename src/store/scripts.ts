/**
 * The Lua steps that must be atomic. Each is named after what it does and how many keys it takes
 * (BullMQ's `extendLock-2.lua` convention), with KEYS / ARGV / output documented. Registered on a
 * connection with `defineScripts`.
 */
import type { Cluster, Redis } from 'ioredis';

import { luaLifecyclePrelude } from '../domain/lifecycle.js';

/**
 * stageRows-2: de-duplicate and stage valid rows of an ingest.
 * KEYS[1] chats hash, KEYS[2] order list.
 * ARGV: chatKey1, json1, chatKey2, json2, ...
 * Output: one integer per row, 1 = new chat (staged), 0 = duplicate of an earlier row.
 */
const stageRows = `
local out = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out`;

/**
 * claimChat-3: decide, before calling the API, whether this job should run.
 * KEYS[1] batch hash, KEYS[2] results hash, KEYS[3] parked hash. ARGV[1] chat key.
 * Output: 'go' | 'done' (already has a result: a re-delivered or stalled job) | 'parked' (batch paused or
 * stopped: the chat is parked for resume) | 'cancel' (batch being cancelled) | 'gone' (no batch record).
 * Parking happens here, atomically with reading the status, so a concurrent resume cannot miss the chat.
 */
const claimChat = `${luaLifecyclePrelude()}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'done' end
if LIFECYCLE.park[status] then
  redis.call('HSET', KEYS[3], ARGV[1], 1)
  return 'parked'
end
if LIFECYCLE.cancel[status] then return 'cancel' end
return 'go'`;

/**
 * recordResult-5: store a chat's terminal result exactly once and move the counters with it.
 * KEYS[1] batch hash, KEYS[2] results hash, KEYS[3] chats hash, KEYS[4] latency hash, KEYS[5] parked hash.
 * ARGV[1] chat key, ARGV[2] result record, ARGV[3] counter ('succeeded'|'failed'|'cancelled'),
 * ARGV[4] attempts made, ARGV[5] latency bucket ('' = none), ARGV[6] failure reason ('' = none), ARGV[7] now ms.
 * Output: -1 already recorded (nothing changed), 0 recorded, 1 recorded and it was the batch's last chat
 * (the batch made its lifecycle's \`complete\` transition: the caller must enqueue the report).
 */
const recordResult = `${luaLifecyclePrelude()}
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[4]))
redis.call('HDEL', KEYS[5], ARGV[1])
if ARGV[3] == 'succeeded' then redis.call('HDEL', KEYS[3], ARGV[1]) end
if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[5], 1) end
if ARGV[6] ~= '' then redis.call('HINCRBY', KEYS[1], 'reason:' .. ARGV[6], 1) end
local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
local valid = tonumber(redis.call('HGET', KEYS[1], 'valid') or '-1')
if done >= valid then
  local status = redis.call('HGET', KEYS[1], 'status')
  if LIFECYCLE.complete_from[status] then
    redis.call('HSET', KEYS[1], 'status', LIFECYCLE.complete_to, 'finishedAt', ARGV[7])
    return 1
  end
end
return 0`;

/**
 * transitionStatus-1: compare-and-set of a batch's status.
 * KEYS[1] batch hash. ARGV[1] new status, ARGV[2] reason ('' keeps none), ARGV[3..] statuses allowed to move from.
 * Output: the previous status if the move happened, or false (nil) if the batch is missing or in another state.
 */
const transitionStatus = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
for i = 3, #ARGV do
  if status == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2])
    return status
  end
end
return false`;

/**
 * ownedLock-1: a lock that only its owner can extend or release (a schedule's "run in progress" lock).
 * KEYS[1] lock key. ARGV[1] 'acquire' | 'extend' | 'release', ARGV[2] owner, ARGV[3] ttl ms.
 * acquire: take the lock if free, or keep it if `owner` already holds it (a re-delivered job resumes its own run).
 * Output: 1 if `owner` holds (held) the lock after the call, else 0.
 */
const ownedLock = `
local holder = redis.call('GET', KEYS[1])
if ARGV[1] == 'acquire' and not holder then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if holder ~= ARGV[2] then return 0 end
if ARGV[1] == 'release' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`;

export interface ScriptCommands {
  stageRows(chats: string, order: string, ...args: string[]): Promise<number[]>;
  claimChat(batch: string, results: string, parked: string, chatKey: string): Promise<string>;
  recordResult(
    batch: string,
    results: string,
    chats: string,
    latency: string,
    parked: string,
    ...args: string[]
  ): Promise<number>;
  transitionStatus(batch: string, ...args: string[]): Promise<string | null>;
  pacerReserve(pacer: string, intervalUs: string): Promise<number>;
  pacerPause(pacer: string, pauseUs: string): Promise<number>;
  pacerAdmit(log: string, windowUs: string, max: string, member: string): Promise<number>;
  pacerPausedFor(pacer: string): Promise<number>;
  ownedLock(lock: string, action: 'acquire' | 'extend' | 'release', owner: string, ttlMs: string): Promise<number>;
}

/**
 * The pacer's state is one STRING, `<next slot µs>|<paused until µs>` (µs since epoch, Redis TIME, so every
 * process shares one clock). Numbers are < 2^53, exact in Lua doubles, and written with %.0f because
 * tostring() would round them to 14 digits. A bare number (the older form) reads as "not paused".
 */
const pacerState = `
local function readPacer(key)
  local v = redis.call('GET', key)
  if not v then return 0, 0 end
  local bar = string.find(v, '|', 1, true)
  if not bar then return tonumber(v), 0 end
  return tonumber(string.sub(v, 1, bar - 1)), tonumber(string.sub(v, bar + 1))
end
local function writePacer(key, slot, pause, now)
  local horizon = math.max(slot, pause, now)
  redis.call('SET', key, string.format('%.0f|%.0f', slot, pause), 'PX', math.ceil((horizon - now) / 1000) + 60000)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot, pause = readPacer(KEYS[1])
`;

/** pacerReserve-1: takes the next call slot (GCRA). ARGV[1] = interval µs. Output: µs to wait for the slot. */
const pacerReserve = `${pacerState}
if slot < now then slot = now end
if slot < pause then slot = pause end
writePacer(KEYS[1], slot + tonumber(ARGV[1]), pause, now)
return math.floor(slot - now)
`;

/** pacerPause-1: nobody's slot before now + ARGV[1] µs. Output: 1. */
const pacerPause = `${pacerState}
local resume = now + tonumber(ARGV[1])
if resume > slot then slot = resume end
if resume > pause then pause = resume end
writePacer(KEYS[1], slot, pause, now)
return 1
`;

/**
 * pacerPausedFor-1: µs left of the current pause (0 = not paused). Read after sleeping until a slot: a pause
 * set meanwhile voids the slot.
 */
const pacerPausedFor = `${pacerState}
if pause > now then return math.floor(pause - now) end
return 0
`;

/**
 * pacerAdmit-1, checked when a call is about to go: a sliding log (ZSET of call times, µs) holding at most
 * ARGV[2] calls in any ARGV[1] µs. Slots alone are exact only if timers fire on time; a late timer can bunch
 * calls, and this check makes the limit hold for the calls' real start times. ARGV[3] is a unique member.
 * Output: 0 when admitted (and recorded), else µs until the oldest call leaves the window.
 */
const pacerAdmit = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return math.max(1, math.floor(oldest + window - now) + 1)
`;

/** A connection with our scripts: a single Redis, or a Redis Cluster (REDIS_CLUSTER; every key shares one slot). */
export type ScriptedRedis = (Redis | Cluster) & ScriptCommands;

/** Registers the scripts on a connection (idempotent: ioredis caches by SHA and falls back to EVAL). */
export function defineScripts(redis: Redis | Cluster): ScriptedRedis {
  const scripted = redis as ScriptedRedis;
  if (typeof scripted.claimChat === 'function') return scripted;
  redis.defineCommand('stageRows', { numberOfKeys: 2, lua: stageRows });
  redis.defineCommand('claimChat', { numberOfKeys: 3, lua: claimChat });
  redis.defineCommand('recordResult', { numberOfKeys: 5, lua: recordResult });
  redis.defineCommand('transitionStatus', { numberOfKeys: 1, lua: transitionStatus });
  redis.defineCommand('pacerReserve', { numberOfKeys: 1, lua: pacerReserve });
  redis.defineCommand('pacerPause', { numberOfKeys: 1, lua: pacerPause });
  redis.defineCommand('pacerAdmit', { numberOfKeys: 1, lua: pacerAdmit });
  redis.defineCommand('pacerPausedFor', { numberOfKeys: 1, lua: pacerPausedFor });
  redis.defineCommand('ownedLock', { numberOfKeys: 1, lua: ownedLock });
  return scripted;
}
