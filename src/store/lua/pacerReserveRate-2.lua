--[[
  pacerReserveRate-2: take the next call slot (GCRA), spaced by the adaptive rate stored now: every worker
  process reads the rate the last control step set when it reserves a slot (RATE_LIMIT_MAX=auto).
  Slots already handed out were spaced by the rate of their time; when the rate has changed since the last
  reservation (field `slotRate`), the time still reserved ahead of now (or of the end of a 429 pause: a pause
  is a time, not a number of slots, and a cut usually comes with one) is rescaled by old rate / new rate, so
  the new rate holds from the next slot on instead of after every slot reserved before (up to WORKER_CONCURRENCY
  per process, each one old interval apart). Callers asleep on older slots keep them; the sliding log
  (pacerAdmit) caps the calls at the new rate meanwhile.
  And no slot is handed out further ahead than ARGV[3] µs: a caller asleep until a slot far ahead would keep
  the spacing of an old rate for all that time (a process's WORKER_CONCURRENCY callers, each an old interval
  apart, is seconds at a low rate). Such a caller is told to ask again later instead.
  KEYS[1] pacer state (see includes/pacerState.lua), KEYS[2] adaptive rate state (HASH, fields `rate`,
  `slotRate`).
  ARGV[1] window µs (the admit window), ARGV[2] rate to use while none is stored (calls per window),
  ARGV[3] horizon µs.
  Output: { µs to wait, the rate used, 1 = the slot is taken (call after the wait) or 0 = none taken (ask again
  after the wait less the horizon) }.
]]
--@include pacerState
local rate = tonumber(redis.call('HGET', KEYS[2], 'rate') or ARGV[2]) or tonumber(ARGV[2])
if rate < 1 then rate = 1 end
rate = math.floor(rate)
local interval = math.ceil(tonumber(ARGV[1]) / rate)
local last = tonumber(redis.call('HGET', KEYS[2], 'slotRate') or '')
local from = math.max(now, pause)
if last and last ~= rate and slot > from then slot = from + math.ceil((slot - from) * last / rate) end
if last ~= rate and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'slotRate', rate) end
if slot < now then slot = now end
if slot < pause then slot = pause end
if slot - now > tonumber(ARGV[3]) then return { math.floor(slot - now), rate, 0 } end
writePacer(KEYS[1], slot + interval, pause, now)
return { math.floor(slot - now), rate, 1 }
