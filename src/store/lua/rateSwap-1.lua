--[[
  rateSwap-1: writes the adaptive rate limit's next state only if nobody wrote one since it was read (compare
  and set on `version`): every worker process steps the one shared state, and a step computed from a state
  another process replaced meanwhile is refused, to be computed again. Fields not written (the pacer's
  `slotRate`) are kept.
  KEYS[1] adaptive rate state (HASH: the fields of AdaptiveState, plus `version`).
  ARGV[1] version read ('0' when nothing was stored), ARGV[2] expiry ms, ARGV[3…] field, value, field, value …
  Output: 1 written (version is now ARGV[1] + 1), 0 refused.
]]
local current = redis.call('HGET', KEYS[1], 'version') or '0'
if current ~= ARGV[1] then return 0 end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
fields[#fields + 1] = 'version'
fields[#fields + 1] = tostring(tonumber(ARGV[1]) + 1)
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
