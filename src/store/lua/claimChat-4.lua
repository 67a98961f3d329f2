--[[
  claimChat-4: decide, before calling the API, whether this job should run.
  KEYS[1] batch hash, KEYS[2] results hash, KEYS[3] parked hash, KEYS[4] calls hash (see recordResult-6).
  ARGV[1] chat key, ARGV[2] '1' = on go, also count the call about to be made (what result-store.ts
  `countCall` does), in this same step; '' = do not.
  Output: 'go' | 'done' (already has a result: a re-delivered or stalled job) | 'parked' (batch paused, stopped
  or held for approval: the chat is parked, for a resume or an approval) | 'cancel' (batch being cancelled) | 'gone' (no
  batch record). With ARGV[2] '1', go is the chat's calls so far (an integer, at least 1) instead of 'go'.
  On 'done', a call count left by a copy of the job that called after the chat was recorded (its call then
  failed transiently, or stopped the batch) is added to the batch's attempts, so they still equal the calls made.
  Parking happens here, atomically with reading the status, so a concurrent resume cannot miss the chat.
  The statuses come from the LIFECYCLE table (src/domain/lifecycle.ts), never spelled here.
]]
--@include lifecycle
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  local counted = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
  if counted ~= 0 then
    redis.call('HDEL', KEYS[4], ARGV[1])
    redis.call('HINCRBY', KEYS[1], 'attempts', math.max(0, counted))
  end
  return 'done'
end
if LIFECYCLE.park[status] then
  redis.call('HSET', KEYS[3], ARGV[1], 1)
  return 'parked'
end
if LIFECYCLE.cancel[status] then return 'cancel' end
if ARGV[2] == '1' then return redis.call('HINCRBY', KEYS[4], ARGV[1], 1) end
return 'go'
