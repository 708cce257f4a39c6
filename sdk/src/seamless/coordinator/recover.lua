-- Operator recovery: make KEYS[1] claimable again with a fresh attempt budget. A parked,
-- free or expired key is always recoverable; a live lease or a completed key only with
-- force (a live holder's next complete/renew/fail is then refused as stale). The stored
-- token is kept so the next claim's token is still greater than every earlier one.
-- ARGV: prefix, key, force ('1'|'0'), rl_identity, rl_limit
local prefix, key, force = ARGV[1], ARGV[2], ARGV[3] == '1'
local now = now_ms()
local h = KEYS[1]
local rl = rl_key(prefix, ARGV[4], tonumber(ARGV[5]), now)
ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'until', 'holder', 'token', 'job_id')
local checks = {prefix .. 'idx:held', 'zset', prefix .. 'idx:expired', 'zset',
  prefix .. 'idx:failed', 'zset'}
if rl then
  table.insert(checks, rl)
  table.insert(checks, 'string')
end
ensure_types(job_types(prefix, cur[5], checks))

local wait = rate_limited(rl, tonumber(ARGV[5]), now)
if wait > 0 then
  return {'rate_limited', num_str(wait)}
end
local state = cur[1] or 'free'
if state == 'held' and tonumber(cur[2]) > now and not force then
  local jid, done, total = job_fields(prefix, cur[5])
  return {'held', cur[2], cur[3] or '', jid, done, total}
end
if state == 'completed' and not force then
  local jid, done, total = job_fields(prefix, cur[5])
  return {'completed', '', '', jid, done, total}
end
if cur[1] then
  redis.call('HSET', h, 'state', 'free', 'attempts', '0', 'until', num_str(now),
    'recovered_ms', num_str(now))
  -- failed_token goes too: a fail replayed after recovery is stale, not the first fail.
  redis.call('HDEL', h, 'reason', 'parked_ms', 'failed_token')
  redis.call('PERSIST', h)
end
redis.call('ZREM', prefix .. 'idx:held', key)
redis.call('ZREM', prefix .. 'idx:expired', key)
redis.call('ZREM', prefix .. 'idx:failed', key)
return {'recovered', state, cur[4] or ''}
