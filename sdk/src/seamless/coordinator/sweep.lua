-- Move leases whose time ran out from the held index to the expired index, so each expiry
-- is reported exactly once whichever replica sweeps first. Returns a flat list of
-- key, holder, token, until for every newly expired lease (at most ARGV[2] of them).
-- KEYS: idx:held, idx:expired of one partition
-- ARGV: partition prefix, limit
local prefix = ARGV[1]
local now = now_ms()
local held_idx, expired_idx = KEYS[1], KEYS[2]
ensure_types({held_idx, 'zset', expired_idx, 'zset'})
local due = redis.call('ZRANGEBYSCORE', held_idx, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
-- Read every due lease first (a wrongly typed one fails here, before any write).
local rows = {}
for i, key in ipairs(due) do
  local h = prefix .. 'lease:' .. key
  ensure_types({h, 'hash'})
  rows[i] = redis.call('HMGET', h, 'holder', 'token', 'until', 'state')
end
local out = {}
for i, key in ipairs(due) do
  local cur = rows[i]
  redis.call('ZREM', held_idx, key)
  if cur[4] == 'held' and cur[3] and tonumber(cur[3]) <= now then
    redis.call('ZADD', expired_idx, cur[3], key)
    table.insert(out, key)
    table.insert(out, cur[1] or '')
    table.insert(out, cur[2] or '')
    table.insert(out, cur[3])
  end
end
return out
