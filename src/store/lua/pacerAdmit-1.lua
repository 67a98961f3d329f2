--[[
  pacerAdmit-1, checked when a call is about to go: a sliding log of call times holding at most ARGV[2] calls
  in any ARGV[1] µs. Slots alone are exact only if timers fire on time; a late timer can bunch calls, and this
  check makes the limit hold for the calls' real start times.
  KEYS[1] pacer log (ZSET: unique member → call time µs).
  ARGV[1] window µs, ARGV[2] calls allowed per window, ARGV[3] a unique member for this call.
  Output: 0 when admitted (and recorded), else µs until the oldest call leaves the window.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return math.max(1, math.floor(oldest + window - now) + 1)
