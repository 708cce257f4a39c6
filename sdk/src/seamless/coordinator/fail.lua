-- The holder of the live lease on KEYS[1] gives it back with a reason. The key becomes
-- claimable again, or is parked as failed once it has used max_attempts claims.
-- ARGV: prefix, key, token, reason, max_attempts, rl_identity, rl_limit
local prefix, key, token, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = now_ms()
local wait = rate_limited(prefix, ARGV[6], tonumber(ARGV[7]), now)
if wait > 0 then
  return {'rate_limited', num_str(wait)}
end
local stale = check_live(KEYS[1], key, prefix, token, now)
if stale then
  return stale
end
local cur = redis.call('HMGET', KEYS[1], 'holder', 'client', 'attempts', 'job_id')
local attempts = tonumber(cur[3] or '0')
local parked = attempts >= tonumber(ARGV[5])
local new_state = 'free'
if parked then
  new_state = 'failed'
  redis.call('ZADD', prefix .. 'idx:failed', now, key)
  redis.call('HSET', KEYS[1], 'parked_ms', num_str(now))
end
redis.call('HSET', KEYS[1], 'state', new_state, 'until', num_str(now), 'reason', reason,
  'failed_ms', num_str(now))
redis.call('ZREM', prefix .. 'idx:held', key)
local progress = job_progress(prefix, cur[4] or '')
local parked_flag = '0'
if parked then
  parked_flag = '1'
end
return {'failed', token, cur[1] or '', cur[2] or '', num_str(attempts), cur[4] or '',
  progress[1], progress[2], parked_flag}
