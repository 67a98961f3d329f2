--[[
  hdelIfEquals-1: compare-and-delete of one hash field: deletes it only if it still holds the value the caller
  read, so a value written meanwhile by someone else (a newer schedule run registering as the waiter) stays.
  KEYS[1] the hash (keys.ts scheduleState).
  ARGV[1] the field, ARGV[2] the value the caller read.
  Output: 1 if the field held ARGV[2] and is deleted, else 0.
]]
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
