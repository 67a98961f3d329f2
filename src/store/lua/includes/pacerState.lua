--[[
  pacerState: the shared start of the pacer scripts that read the pacer's state (KEYS[1]).
  The state is one STRING, `<next slot µs>|<paused until µs>` (µs since epoch, Redis TIME, so every process
  shares one clock). Numbers are < 2^53, exact in Lua doubles, and written with %.0f because tostring() would
  round them to 14 digits. A bare number (the older form) reads as "not paused".
  Defines: readPacer(key), writePacer(key, slot, pause, now), and the locals now, slot, pause.
]]
local function readPacer(key)
  local v = redis.call('GET', key)
  if not v then return 0, 0 end
  local bar = string.find(v, '|', 1, true)
  if not bar then return tonumber(v), 0 end
  return tonumber(string.sub(v, 1, bar - 1)), tonumber(string.sub(v, bar + 1))
end
local function writePacer(key, slot, pause, now)
  local horizon = math.max(slot, pause, now)
  redis.call('SET', key, string.format('%.0f|%.0f', slot, pause), 'PX', math.ceil((horizon - now) / 1000) + 60000)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot, pause = readPacer(KEYS[1])
