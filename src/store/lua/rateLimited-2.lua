--[[
  rateLimited-2: the API answered a chat's call with 429. Counts it, takes the call back from the chat's call
  count (a 429 is not an attempt: the job runs again after the pause), and keeps the batch's run of 429s.
  KEYS[1] batch hash, KEYS[2] calls hash (see recordResult-6).
  ARGV[1] chat key, ARGV[2] now ms, ARGV[3] pause asked for, ms, ARGV[4] longest run of 429s allowed, ms
  (0 = no limit), ARGV[5] gap, ms: a 429 that comes this long after the last pause ended starts a new run (the
  batch was paused, stopped or had no worker meanwhile, so nothing says the API kept refusing), ARGV[6] the
  batch status in which a run counts (given by the caller: this script spells no status).
  The run starts at the first 429 (`rateLimitedSince`, ms) and ends with a success (recordResult-6) or when the
  caller stops the batch. The pause is cut short where the run reaches its limit, so the call after it can end
  the run. `apiPauseUntil` (ms) keeps the latest pause end, for views of the batch.
  Output: {run start ms (0 = the batch is not in that status: no run), pause end ms}.
]]
redis.call('HINCRBY', KEYS[1], 'rateLimited', 1)
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
local now = tonumber(ARGV[2])
local pauseEnd = now + tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local previousEnd = tonumber(redis.call('HGET', KEYS[1], 'apiPauseUntil') or '0')
local since = 0
if redis.call('HGET', KEYS[1], 'status') == ARGV[6] then
  since = tonumber(redis.call('HGET', KEYS[1], 'rateLimitedSince') or '0')
  if since == 0 or now - previousEnd > tonumber(ARGV[5]) then
    since = now
    redis.call('HSET', KEYS[1], 'rateLimitedSince', string.format('%.0f', since))
  end
  if limit > 0 and since + limit < pauseEnd then pauseEnd = math.max(now, since + limit) end
end
if pauseEnd > previousEnd then redis.call('HSET', KEYS[1], 'apiPauseUntil', string.format('%.0f', pauseEnd)) end
return {since, pauseEnd}
