--[[
  pacerReserve-1: take the next call slot (GCRA).
  KEYS[1] pacer state (see includes/pacerState.lua).
  ARGV[1] interval between calls, µs.
  Output: µs to wait for the slot (0 = call now).
]]
--@include pacerState
if slot < now then slot = now end
if slot < pause then slot = pause end
writePacer(KEYS[1], slot + tonumber(ARGV[1]), pause, now)
return math.floor(slot - now)
