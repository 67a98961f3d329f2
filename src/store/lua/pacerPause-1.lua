--[[
  pacerPause-1: nobody's slot before now + ARGV[1] µs.
  KEYS[1] pacer state (see includes/pacerState.lua).
  ARGV[1] pause length, µs.
  Output: 1.
]]
--@include pacerState
local resume = now + tonumber(ARGV[1])
if resume > slot then slot = resume end
if resume > pause then pause = resume end
writePacer(KEYS[1], slot, pause, now)
return 1
