-- Mark KEYS[1] completed by the holder of its live lease.
-- ARGV: prefix, key, token, retention_ms (0 keeps the record), rl_identity, rl_limit
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
local cur = redis.call('HMGET', KEYS[1], 'holder', 'client', 'attempts', 'job_id')
redis.call('HSET', KEYS[1], 'state', 'completed', 'until', num_str(now),
  'completed_ms', num_str(now))
redis.call('HDEL', KEYS[1], 'reason')
redis.call('ZREM', prefix .. 'idx:held', key)
local job_id = cur[4] or ''
if job_id ~= '' then
  redis.call('SADD', prefix .. 'job:' .. job_id .. ':done', key)
end
local retention = tonumber(ARGV[4])
if retention > 0 then
  redis.call('PEXPIRE', KEYS[1], retention)
end
local progress = job_progress(prefix, job_id)
return {'completed', token, cur[1] or '', cur[2] or '', cur[3] or '0', job_id, progress[1],
  progress[2]}
