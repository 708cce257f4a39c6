-- Claim KEYS[1] (the lease hash of ARGV[2]).
-- KEYS: lease hash, idx:held, idx:expired, idx:failed of its partition, then (with a job_id)
--       the job's hash and done set
-- ARGV: partition prefix, key, lease_ms, holder, client, job_id, shards_total, max_attempts,
--       request_id ('' for none)
--
-- Idempotent retry: a claim whose reply was lost is sent again with the same request id.
-- When the key's live lease was granted to that request id, client and holder, the claim
-- answers granted with that lease unchanged (same token, attempts and lease end: the lease
-- is not extended, so the replay writes nothing). Any other request id, client or holder
-- still gets 'held'.
--
-- Fencing token: max(stored + 1, now in microseconds). The stored part makes tokens
-- strictly increase per key; the clock part keeps them increasing when Redis loses its data
-- (a restart without persistence forgets `stored`, but no token ever runs ahead of the
-- clock, so a later clock reading exceeds every token issued before). See store.py.
local prefix, key = ARGV[1], ARGV[2]
local lease_ms = tonumber(ARGV[3])
local holder, client, job_id = ARGV[4], ARGV[5], ARGV[6]
local shards_total = ARGV[7]
local max_attempts = tonumber(ARGV[8])
local request_id = ARGV[9] or ''
local clock_us = now_us()
local now = math.floor(clock_us / 1000)
local h, held_idx, expired_idx, failed_idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- Preconditions, before the first write.
ensure_types({h, 'hash'})
local cur = redis.call('HMGET', h, 'state', 'token', 'holder', 'until', 'attempts', 'job_id',
  'reason', 'client', 'request_id')
local checks = {held_idx, 'zset', expired_idx, 'zset', failed_idx, 'zset'}
job_types(prefix, job_id, checks)
job_types(prefix, cur[6], checks)
ensure_types(checks)

local state = cur[1] or 'free'
local attempts = tonumber(cur[5] or '0')
local expired, newly_expired, lost_holder, lost_token = '0', '0', '', ''

if state == 'completed' then
  -- The shard is done, whoever did it: it counts for the claiming job too, so a job whose
  -- shards were finished under an overlapping job still reaches a ratio of 1.0.
  if job_id ~= '' then
    redis.call('SADD', done_key(prefix, job_id), key)
    if shards_total ~= '' then
      redis.call('HSET', job_key(prefix, job_id), 'shards_total', shards_total)
    end
  end
  local progress = job_progress(prefix, job_id)
  return {'completed', job_id, progress[1], progress[2]}
end
if state == 'failed' then
  local jid, done, total = job_fields(prefix, cur[6])
  return {'failed', cur[7] or '', jid, done, total}
end
if state == 'held' then
  if tonumber(cur[4]) > now then
    if request_id ~= '' and cur[9] == request_id and cur[8] == client and cur[3] == holder then
      local jid = cur[6] or ''
      local progress = job_progress(prefix, jid)
      return {'granted', cur[2], cur[4], cur[5] or '0', jid, progress[1], progress[2], '0', '0',
        '', '', '1'}
    end
    local jid, done, total = job_fields(prefix, cur[6])
    return {'held', cur[4], cur[3] or '', jid, done, total}
  end
  expired, lost_holder, lost_token = '1', cur[3] or '', cur[2] or ''
  newly_expired = num_str(redis.call('ZREM', held_idx, key))
  redis.call('ZREM', expired_idx, key)
  if attempts >= max_attempts then
    local reason = 'lease expired on each of ' .. num_str(attempts) .. ' attempts'
    redis.call('HSET', h, 'state', 'failed', 'reason', reason, 'parked_ms', num_str(now))
    redis.call('ZADD', failed_idx, now, key)
    local jid, done, total = job_fields(prefix, cur[6])
    return {'parked', reason, newly_expired, lost_holder, lost_token, num_str(attempts), jid,
      done, total}
  end
end

local token = math.max(tonumber(cur[2] or '0') + 1, clock_us)
local lease_until = now + lease_ms
attempts = attempts + 1
redis.call('HSET', h, 'state', 'held', 'token', num_str(token), 'holder', holder,
  'client', client, 'until', num_str(lease_until), 'attempts', num_str(attempts),
  'claimed_ms', num_str(now), 'request_id', request_id)
if job_id ~= '' then
  redis.call('HSET', h, 'job_id', job_id)
  if shards_total ~= '' then
    redis.call('HSET', job_key(prefix, job_id), 'shards_total', shards_total)
  end
else
  job_id = cur[6] or ''
end
redis.call('ZADD', held_idx, lease_until, key)
local progress = job_progress(prefix, job_id)
return {'granted', num_str(token), num_str(lease_until), num_str(attempts), job_id,
  progress[1], progress[2], expired, newly_expired, lost_holder, lost_token, '0'}
