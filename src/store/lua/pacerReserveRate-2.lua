--[[
  pacerReserveRate-2: take the next call slot (GCRA), spaced by the adaptive rate stored now: every worker
  process reads the rate the last control step set when it reserves a slot (RATE_LIMIT_MAX=auto).
  KEYS[1] pacer state (see includes/pacerState.lua), KEYS[2] adaptive rate state (HASH, field `rate`).
  ARGV[1] window µs (the admit window), ARGV[2] rate to use while none is stored (calls per window).
  Output: { µs to wait for the slot (0 = call now), the rate used }.
]]
--@include pacerState
local rate = tonumber(redis.call('HGET', KEYS[2], 'rate') or ARGV[2]) or tonumber(ARGV[2])
if rate < 1 then rate = 1 end
rate = math.floor(rate)
local interval = math.ceil(tonumber(ARGV[1]) / rate)
if slot < now then slot = now end
if slot < pause then slot = pause end
writePacer(KEYS[1], slot + interval, pause, now)
return { math.floor(slot - now), rate }
