--[[
  recordResult-6: store a chat's terminal result exactly once and move the counters with it.
  KEYS[1] batch hash, KEYS[2] results hash, KEYS[3] chats hash, KEYS[4] latency hash, KEYS[5] parked hash,
  KEYS[6] calls hash (chat key → API calls made for it, counted right before each call).
  ARGV[1] chat key, ARGV[2] result record, ARGV[3] counter ('succeeded'|'failed'|'cancelled'),
  ARGV[4] attempts made, ARGV[5] latency bucket ('' = none), ARGV[6] failure reason ('' = none), ARGV[7] now ms.
  The chat's call count, when it has one, is its attempts: it replaces ARGV[4] and the attempts part of the
  record (the third |-separated field, see codecs.ts encodeResult), and its field is deleted. A count is never
  lost: on a chat already recorded (a stalled copy of its job made a call too), it is added to the batch's
  attempts, so they always equal the calls made.
  A success ends the batch's run of 429s (`rateLimitedSince`).
  Output: -1 already recorded (only a call count moved), 0 recorded, 1 recorded and it was the batch's last
  chat (the batch made its lifecycle's `complete` transition: the caller must enqueue the report).
]]
--@include lifecycle
local attempts = tonumber(ARGV[4])
local record = ARGV[2]
local counted = redis.call('HGET', KEYS[6], ARGV[1])
if counted then
  redis.call('HDEL', KEYS[6], ARGV[1])
  attempts = math.max(0, tonumber(counted))
  local head, tail = string.match(record, '^([^|]*|[^|]*|)[^|]*(|.*)$')
  if head then record = head .. string.format('%d', attempts) .. tail end
end
if redis.call('HSETNX', KEYS[2], ARGV[1], record) == 0 then
  if counted then redis.call('HINCRBY', KEYS[1], 'attempts', attempts) end
  return -1
end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], 'attempts', attempts)
redis.call('HDEL', KEYS[5], ARGV[1])
if ARGV[3] == 'succeeded' then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[1], 'rateLimitedSince')
end
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
return 0
