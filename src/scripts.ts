/**
 * The Lua steps that must be atomic. Each is named after what it does and how many keys it takes
 * (BullMQ's `extendLock-2.lua` convention), with KEYS / ARGV / output documented. Registered on a
 * connection with `defineScripts`.
 */
import type { Redis } from 'ioredis';

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
const claimChat = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'done' end
if status == 'paused' or status == 'stopped' then
  redis.call('HSET', KEYS[3], ARGV[1], 1)
  return 'parked'
end
if status == 'cancelling' then return 'cancel' end
return 'go'`;

/**
 * recordResult-5: store a chat's terminal result exactly once and move the counters with it.
 * KEYS[1] batch hash, KEYS[2] results hash, KEYS[3] chats hash, KEYS[4] latency hash, KEYS[5] parked hash.
 * ARGV[1] chat key, ARGV[2] result record, ARGV[3] counter ('succeeded'|'failed'|'cancelled'),
 * ARGV[4] attempts made, ARGV[5] latency bucket ('' = none), ARGV[6] failure reason ('' = none), ARGV[7] now ms.
 * Output: -1 already recorded (nothing changed), 0 recorded, 1 recorded and it was the batch's last chat
 * (status is now 'finalizing': the caller must enqueue the report).
 */
const recordResult = `
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
  if status ~= 'finalizing' and status ~= 'finished' and status ~= 'cancelled' then
    redis.call('HSET', KEYS[1], 'status', 'finalizing', 'finishedAt', ARGV[7])
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
  ownedLock(lock: string, action: 'acquire' | 'extend' | 'release', owner: string, ttlMs: string): Promise<number>;
}

/**
 * Pacer slot (GCRA). ARGV[1] = interval µs. Returns µs to wait before this call's slot. Time comes from Redis
 * (TIME) so every process shares one clock. Numbers are µs since epoch (< 2^53, exact in Lua doubles) and are
 * written with %.0f because tostring() would round them to 14 digits.
 */
const pacerReserve = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local nextSlot = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', nextSlot), 'PX', math.ceil((nextSlot - now) / 1000) + 60000)
return math.floor(slot - now)
`;

/** Pacer pause: no slot before now + ARGV[1] µs. */
const pacerPause = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local resume = now + tonumber(ARGV[1])
if resume > slot then
  redis.call('SET', KEYS[1], string.format('%.0f', resume), 'PX', math.ceil((resume - now) / 1000) + 60000)
end
return 1
`;

export type ScriptedRedis = Redis & ScriptCommands;

/** Registers the scripts on a connection (idempotent: ioredis caches by SHA and falls back to EVAL). */
export function defineScripts(redis: Redis): ScriptedRedis {
  const scripted = redis as ScriptedRedis;
  if (typeof scripted.claimChat === 'function') return scripted;
  redis.defineCommand('stageRows', { numberOfKeys: 2, lua: stageRows });
  redis.defineCommand('claimChat', { numberOfKeys: 3, lua: claimChat });
  redis.defineCommand('recordResult', { numberOfKeys: 5, lua: recordResult });
  redis.defineCommand('transitionStatus', { numberOfKeys: 1, lua: transitionStatus });
  redis.defineCommand('pacerReserve', { numberOfKeys: 1, lua: pacerReserve });
  redis.defineCommand('pacerPause', { numberOfKeys: 1, lua: pacerPause });
  redis.defineCommand('ownedLock', { numberOfKeys: 1, lua: ownedLock });
  return scripted;
}
