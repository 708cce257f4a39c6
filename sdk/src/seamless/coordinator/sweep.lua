-- Move leases whose time ran out from the held index to the expired index, so each expiry
-- is reported exactly once whichever replica sweeps first. Returns a flat list of
-- key, holder, token, until for every newly expired lease (at most ARGV[2] of them).
-- ARGV: prefix, limit
local prefix = ARGV[1]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', prefix .. 'idx:held', '-inf', now, 'LIMIT', 0,
  tonumber(ARGV[2]))
local out = {}
for _, key in ipairs(due) do
  local h = prefix .. 'lease:' .. key
  local cur = redis.call('HMGET', h, 'holder', 'token', 'until', 'state')
  redis.call('ZREM', prefix .. 'idx:held', key)
  if cur[4] == 'held' and cur[3] and tonumber(cur[3]) <= now then
    redis.call('ZADD', prefix .. 'idx:expired', cur[3], key)
    table.insert(out, key)
    table.insert(out, cur[1] or '')
    table.insert(out, cur[2] or '')
    table.insert(out, cur[3])
  end
end
return out
