-- Mark KEYS[1] completed by the holder of its live lease (sent by the client that claimed
-- it: the right token from another client is refused as forbidden, see check_live).
-- KEYS: lease hash, idx:held, idx:expired, idx:failed of its partition
-- ARGV: partition prefix, key, token, retention_ms (0 keeps the record), client
--
-- Idempotent retry: a complete whose reply was lost is sent again with the same token. When
-- the key is already completed with that token by the same client, it answers as the first
-- complete did, changing nothing (the ratio is the job's current one, which can only have
-- grown since). The replay needs the completed record: once completed_retention has
-- expired it, the retry is stale like any unknown token. The same token from another client
-- is forbidden.
local prefix, key, token, client = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local now = now_ms()
local h = KEYS[1]

ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'token', 'until', 'holder', 'client', 'attempts',
  'job_id')
ensure_types(job_types(prefix, cur[7], {KEYS[2], 'zset', KEYS[3], 'zset'}))
if cur[1] == 'completed' and cur[2] == token then
  if cur[5] ~= client then
    return forbidden('completed', prefix, cur[7])
  end
  local progress = job_progress(prefix, cur[7])
  return {'completed', token, cur[4] or '', cur[5], cur[6] or '0', cur[7] or '', progress[1],
    progress[2], '1'}
end
local stale = check_live(cur, cur[5], cur[7], key, prefix, token, client, now)
if stale then
  return stale
end
redis.call('HSET', h, 'state', 'completed', 'until', num_str(now), 'completed_ms', num_str(now))
redis.call('HDEL', h, 'reason')
redis.call('ZREM', KEYS[2], key)
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
  progress[2], '0'}
