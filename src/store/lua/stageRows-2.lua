--[[
  stageRows-2: de-duplicate and stage the valid rows of an ingest.
  KEYS[1] chats hash, KEYS[2] order list.
  ARGV: chatKey1, json1, chatKey2, json2, ...
  Output: one integer per row, 1 = new chat (staged), 0 = duplicate of an earlier row.
]]
local out = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
