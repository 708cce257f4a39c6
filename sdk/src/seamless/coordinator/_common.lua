-- Shared prelude, prepended to every lease script by scripts.py.
--
-- Times come from the Redis server's clock (TIME), so every coordinator replica agrees on
-- when a lease expires. Lua numbers are doubles: integers are exact below 2^53, and the
-- largest value here (a token, epoch ms * 1000 ~ 1.8e15) stays far below that. Numbers are
-- returned to the caller as strings ('%.0f') because Redis truncates Lua numbers in replies
-- and tostring() would print large ones in exponent form.

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

local function num_str(n)
  return string.format('%.0f', n)
end

-- Fixed one-second window per worker identity. Returns 0 when allowed, else the number of
-- milliseconds until the window ends. The counter is the only thing a limited request
-- writes; the lease is never touched.
local function rate_limited(prefix, identity, limit, now)
  if limit <= 0 then
    return 0
  end
  local window = math.floor(now / 1000)
  local counter = prefix .. 'rl:' .. identity .. ':' .. window
  local count = redis.call('INCR', counter)
  if count == 1 then
    redis.call('PEXPIRE', counter, 2000)
  end
  if count > limit then
    return 1000 - (now % 1000)
  end
  return 0
end

local function job_progress(prefix, job_id)
  if job_id == nil or job_id == false or job_id == '' then
    return {'', ''}
  end
  local done = redis.call('SCARD', prefix .. 'job:' .. job_id .. ':done')
  local total = redis.call('HGET', prefix .. 'job:' .. job_id, 'shards_total') or ''
  return {num_str(done), total}
end

-- A complete/fail/renew is accepted only from the holder of the current live lease.
-- Returns nil when `token` is that lease's token, else the stale reply. A token that names
-- the current lease after it expired is stale too: the key may already be claimable, and an
-- expiry noticed here is reported once (ZREM on the held index decides who reports it).
local function check_live(lease_key, key, prefix, token, now)
  local cur = redis.call('HMGET', lease_key, 'state', 'token', 'until', 'holder')
  local state = cur[1] or 'free'
  if state ~= 'held' or cur[2] ~= token then
    return {'stale', state, cur[2] or '', '0', cur[4] or ''}
  end
  if tonumber(cur[3]) <= now then
    local newly = redis.call('ZREM', prefix .. 'idx:held', key)
    if newly == 1 then
      redis.call('ZADD', prefix .. 'idx:expired', cur[3], key)
    end
    return {'stale', 'expired', cur[2], num_str(newly), cur[4] or ''}
  end
  return nil
end
