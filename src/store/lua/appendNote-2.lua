--[[
  appendNote-2: appends a note to a batch (RPUSH: concurrent notes all stay), only while its record exists.
  A batch already in retention keeps the list expiring with its record.
  KEYS[1] the batch's notes list, KEYS[2] the batch hash.
  ARGV[1] the note.
  Output: 1 if appended, 0 if the batch has no record.
]]
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
