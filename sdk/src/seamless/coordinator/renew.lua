-- Extend the live lease on KEYS[1], for the client that claimed it.
-- ARGV: prefix, key, token, lease_ms, rl_identity, rl_limit, client
local prefix, key, token, client = ARGV[1], ARGV[2], ARGV[3], ARGV[7]
local now = now_ms()
local h = KEYS[1]
local rl = rl_key(prefix, ARGV[5], tonumber(ARGV[6]), now)

ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'token', 'until', 'holder', 'job_id', 'client')
local checks = {prefix .. 'idx:held', 'zset', prefix .. 'idx:expired', 'zset'}
if rl then
  table.insert(checks, rl)
  table.insert(checks, 'string')
end
ensure_types(job_types(prefix, cur[5], checks))

local wait = rate_limited(rl, tonumber(ARGV[6]), now)
if wait > 0 then
  return {'rate_limited', num_str(wait)}
end
local stale = check_live(cur, cur[6], cur[5], key, prefix, token, client, now)
if stale then
  return stale
end
local lease_until = now + tonumber(ARGV[4])
redis.call('HSET', h, 'until', num_str(lease_until))
redis.call('ZADD', prefix .. 'idx:held', lease_until, key)
return {'renewed', token, num_str(lease_until), cur[4] or ''}
