--[[
  pacerPausedFor-1: µs left of the current pause. Read after sleeping until a slot: a pause set meanwhile
  voids the slot.
  KEYS[1] pacer state (see includes/pacerState.lua).
  ARGV: none.
  Output: µs left of the pause, 0 = not paused.
]]
--@include pacerState
if pause > now then return math.floor(pause - now) end
return 0
