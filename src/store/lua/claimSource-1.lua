--[[
  claimSource-1: claims a file content hash for one batch (the duplicate-upload guard), so that of several
  uploads of the same content at the same moment exactly one runs.
  KEYS[1] the content hash's key (keys.ts sourceHash).
  ARGV[1] the claiming batch's id, ARGV[2] ttl seconds (DUPLICATE_WINDOW_HOURS), ARGV[3] a holder the caller
  found gone (its batch record expired or was removed), which may be replaced; '' when there is none.
  Output: '' if the key now names ARGV[1] (claimed, expiring after ARGV[2] s); else the id of the batch that holds
  it (the caller checks whether that batch still exists, and calls again with it as ARGV[3] if not).
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= ARGV[3] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ''
