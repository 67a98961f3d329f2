--[[
  transitionStatus-1: compare-and-set of a batch's status.
  KEYS[1] batch hash.
  ARGV[1] new status, ARGV[2] reason ('' keeps none), ARGV[3..] statuses allowed to move from.
  Output: the previous status if the move happened, or false (nil) if the batch is missing or in another state.
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
for i = 3, #ARGV do
  if status == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2])
    return status
  end
end
return false
