--[[
  releaseClaim-1: compare-and-delete: gives up a claim only if it still names its owner, so a claim that
  someone else has taken over since is never released by the one who lost it.
  KEYS[1] the claim key (a content hash, keys.ts sourceHash; or a batch's rerun claim, BatchKeys.rerun).
  ARGV[1] the owner (a batch id).
  Output: 1 if the key named ARGV[1] and is deleted, else 0.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
