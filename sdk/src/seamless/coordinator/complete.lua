-- Mark KEYS[1] completed by the holder of its live lease.
-- ARGV: prefix, key, token, retention_ms (0 keeps the record), rl_identity, rl_limit
local prefix, key, token = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local h = KEYS[1]
local rl = rl_key(prefix, ARGV[5], tonumber(ARGV[6]), now)

ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'token', 'until', 'holder', 'client', 'attempts',
  'job_id')
local checks = {prefix .. 'idx:held', 'zset', prefix .. 'idx:expired', 'zset'}
if rl then
  table.insert(checks, rl)
  table.insert(checks, 'string')
end
ensure_types(job_types(prefix, cur[7], checks))

local wait = rate_limited(rl, tonumber(ARGV[6]), now)
if wait > 0 then
  return {'rate_limited', num_str(wait)}
end
local stale = check_live(cur, cur[7], key, prefix, token, now)
if stale then
  return stale
end
redis.call('HSET', h, 'state', 'completed', 'until', num_str(now), 'completed_ms', num_str(now))
redis.call('HDEL', h, 'reason')
redis.call('ZREM', prefix .. 'idx:held', key)
local job_id = cur[7] or ''
if job_id ~= '' then
  redis.call('SADD', done_key(prefix, job_id), key)
end
local retention = tonumber(ARGV[4])
if retention > 0 then
  redis.call('PEXPIRE', h, retention)
end
local progress = job_progress(prefix, job_id)
return {'completed', token, cur[4] or '', cur[5] or '', cur[6] or '0', job_id, progress[1],
  progress[2]}
