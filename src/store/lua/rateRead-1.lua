--[[
  rateRead-1: the adaptive rate limit's state (see execution/adaptive-limiter.ts) and Redis's clock, read
  together so that the control step that follows runs on the time of the read.
  KEYS[1] adaptive rate state (HASH: the fields of AdaptiveState, plus `version`).
  ARGV: none.
  Output: { now ms, field1, value1, field2, value2 … } (no fields when nothing is stored).
]]
local t = redis.call('TIME')
local out = { tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) }
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do out[#out + 1] = all[i] end
return out
