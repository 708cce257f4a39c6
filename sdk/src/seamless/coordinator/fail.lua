-- The holder of the live lease on KEYS[1] gives it back with a reason (sent by the client
-- that claimed it: the right token from another client is forbidden, see check_live). The
-- key becomes claimable again, or is parked as failed once it has used max_attempts claims.
-- KEYS: lease hash, idx:held, idx:expired, idx:failed of its partition
-- ARGV: partition prefix, key, token, reason, max_attempts, client
--
-- Idempotent retry: the fail records its token (`failed_token`). A fail sent again with the
-- same token by the same client, while the key is still free or parked from that fail (no
-- claim since, no recovery), answers as the first fail did and changes nothing; the reason
-- stays the first one. The same token from another client is forbidden.
local prefix, key, token, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local client = ARGV[6]
local now = now_ms()
local h = KEYS[1]

ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'token', 'until', 'holder', 'client', 'attempts',
  'job_id', 'failed_token')
ensure_types(job_types(prefix, cur[7], {KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'zset'}))
if (cur[1] == 'free' or cur[1] == 'failed') and cur[2] == token and cur[8] == token then
  if cur[5] ~= client then
    return forbidden(cur[1], prefix, cur[7])
  end
  local progress = job_progress(prefix, cur[7] or '')
  local was_parked = '0'
  if cur[1] == 'failed' then
    was_parked = '1'
  end
  return {'failed', token, cur[4] or '', cur[5], cur[6] or '0', cur[7] or '', progress[1],
    progress[2], was_parked, '1'}
end
local stale = check_live(cur, cur[5], cur[7], key, prefix, token, client, now)
if stale then
  return stale
end
local attempts = tonumber(cur[6] or '0')
local parked = attempts >= tonumber(ARGV[5])
local new_state = 'free'
if parked then
  new_state = 'failed'
  redis.call('ZADD', KEYS[4], now, key)
  redis.call('HSET', h, 'parked_ms', num_str(now))
end
redis.call('HSET', h, 'state', new_state, 'until', num_str(now), 'reason', reason,
  'failed_ms', num_str(now), 'failed_token', token)
redis.call('ZREM', KEYS[2], key)
local progress = job_progress(prefix, cur[7] or '')
local parked_flag = '0'
if parked then
  parked_flag = '1'
end
return {'failed', token, cur[4] or '', cur[5] or '', num_str(attempts), cur[7] or '',
  progress[1], progress[2], parked_flag, '0'}
