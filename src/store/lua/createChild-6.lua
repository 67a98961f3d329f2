--[[
  createChild-6: creates a rerun batch of a parent and claims the parent's "rerun in progress" slot in one step,
  so that two reruns of one parent started at the same moment can never both be created (they would call the
  same chats twice). The slot names the parent's latest rerun; the caller decides whether that one is over (final
  status, or gone) and then passes it as ARGV[3], which lets this call replace it.
  KEYS[1] the child's batch hash, KEYS[2] the child's notes list, KEYS[3] the batch index (ZSET),
  KEYS[4] the parent's batch hash, KEYS[5] the parent's children list, KEYS[6] the parent's rerun claim (or, for a
  restore, its restore claim: the same rules, another slot).
  ARGV[1] the child's id, ARGV[2] created-at ms (its index score), ARGV[3] the previous rerun the caller found
  over ('' when none), ARGV[4] n, the number of field/value pairs of the child's hash that follow,
  ARGV[5 .. 4+2n] those pairs, ARGV[5+2n ..] the child's notes.
  The parent's children list and claim expire with the parent's record when it is already in retention.
  Output: '' if the child was created; else the id of the rerun that holds the parent's slot (nothing written).
]]
local holder = redis.call('GET', KEYS[6])
if holder and holder ~= ARGV[3] then return holder end
local pairsEnd = 4 + 2 * tonumber(ARGV[4])
redis.call('SET', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, pairsEnd))
if #ARGV > pairsEnd then redis.call('RPUSH', KEYS[2], unpack(ARGV, pairsEnd + 1, #ARGV)) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('RPUSH', KEYS[5], ARGV[1])
local ttl = redis.call('PTTL', KEYS[4])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[5], ttl)
  redis.call('PEXPIRE', KEYS[6], ttl)
end
return ''
