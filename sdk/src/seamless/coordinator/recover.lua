-- Operator recovery: make KEYS[1] claimable again with a fresh attempt budget. A parked,
-- free or expired key is always recoverable; a live lease or a completed key only with
-- force (a live holder's next complete/renew/fail is then refused as stale). The stored
-- token is kept so the next claim's token is still greater than every earlier one.
-- KEYS: lease hash, idx:held, idx:expired, idx:failed of its partition
-- ARGV: partition prefix, key, force ('1'|'0')
local prefix, key, force = ARGV[1], ARGV[2], ARGV[3] == '1'
local now = now_ms()
local h = KEYS[1]
ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'until', 'holder', 'token', 'job_id')
ensure_types(job_types(prefix, cur[5], {KEYS[2], 'zset', KEYS[3], 'zset', KEYS[4], 'zset'}))
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
redis.call('ZREM', KEYS[2], key)
redis.call('ZREM', KEYS[3], key)
redis.call('ZREM', KEYS[4], key)
return {'recovered', state, cur[4] or ''}
