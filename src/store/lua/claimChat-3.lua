--[[
  claimChat-3: decide, before calling the API, whether this job should run.
  KEYS[1] batch hash, KEYS[2] results hash, KEYS[3] parked hash.
  ARGV[1] chat key.
  Output: 'go' | 'done' (already has a result: a re-delivered or stalled job) | 'parked' (batch paused or
  stopped: the chat is parked for resume) | 'cancel' (batch being cancelled) | 'gone' (no batch record).
  Parking happens here, atomically with reading the status, so a concurrent resume cannot miss the chat.
  The statuses come from the LIFECYCLE table (src/domain/lifecycle.ts), never spelled here.
]]
--@include lifecycle
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'done' end
if LIFECYCLE.park[status] then
  redis.call('HSET', KEYS[3], ARGV[1], 1)
  return 'parked'
end
if LIFECYCLE.cancel[status] then return 'cancel' end
return 'go'
