-- Extend the live lease on KEYS[1].
-- ARGV: prefix, key, token, lease_ms, rl_identity, rl_limit
local prefix, key, token = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local wait = rate_limited(prefix, ARGV[5], tonumber(ARGV[6]), now)
if wait > 0 then
  return {'rate_limited', num_str(wait)}
end
local stale = check_live(KEYS[1], key, prefix, token, now)
if stale then
  return stale
end
local lease_until = now + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'until', num_str(lease_until))
redis.call('ZADD', prefix .. 'idx:held', lease_until, key)
return {'renewed', token, num_str(lease_until), redis.call('HGET', KEYS[1], 'holder') or ''}
