--[[
  ownedLock-1: a lock that only its owner can extend or release (a schedule's "run in progress" lock).
  KEYS[1] lock key.
  ARGV[1] 'acquire' | 'extend' | 'release', ARGV[2] owner, ARGV[3] ttl ms.
  acquire: take the lock if free, or keep it if the owner already holds it (a re-delivered job resumes its own run).
  Output: 1 if the owner holds (held) the lock after the call, else 0.
]]
local holder = redis.call('GET', KEYS[1])
if ARGV[1] == 'acquire' and not holder then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if holder ~= ARGV[2] then return 0 end
if ARGV[1] == 'release' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
