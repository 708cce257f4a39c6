-- Extend the live lease on KEYS[1], for the client that claimed it.
-- KEYS: lease hash, idx:held, idx:expired, idx:failed of its partition
-- ARGV: partition prefix, key, token, lease_ms, client
local prefix, key, token, client = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local now = now_ms()
local h = KEYS[1]

ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'token', 'until', 'holder', 'job_id', 'client')
ensure_types(job_types(prefix, cur[5], {KEYS[2], 'zset', KEYS[3], 'zset'}))
local stale = check_live(cur, cur[6], cur[5], key, prefix, token, client, now)
if stale then
  return stale
end
local lease_until = now + tonumber(ARGV[4])
redis.call('HSET', h, 'until', num_str(lease_until))
redis.call('ZADD', KEYS[2], lease_until, key)
return {'renewed', token, num_str(lease_until), cur[4] or ''}
