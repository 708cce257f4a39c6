-- Shared prelude, prepended to every lease script by scripts.py.
--
-- Times come from the Redis server's clock (TIME), so every coordinator replica agrees on
-- when a lease expires. Lua numbers are doubles: integers are exact below 2^53, and the
-- largest value here (a token, epoch ms * 1000 ~ 1.8e15) stays far below that. Numbers are
-- returned to the caller as strings ('%.0f') because Redis truncates Lua numbers in replies
-- and tostring() would print large ones in exponent form.
--
-- All or nothing: Redis does not roll back a script that fails halfway, so every script
-- first checks the type of every key it may write (`ensure_types`) and reads what it needs,
-- and only then writes. The writes that follow cannot fail on a key's type; an out-of-memory
-- refusal comes at the first write, before anything changed.
--
-- Key layout, collision-free by construction (store.py has the whole story): `prefix` is a
-- partition's prefix, hash tag included ('seamless:{p3}:'), and each namespace under it is
-- a fixed word followed by ':' and the caller's string last; no namespace word is a prefix
-- of another, so two different (namespace, id) pairs never name the same key:
--   lease:<key>        hash    idx:held / idx:expired / idx:failed   zsets of keys
--   job:<job_id>       hash    (shards_total)
--   jobdone:<job_id>   set     (completed shard keys)
-- Names built here from `prefix` (a lease's own job, a sweep's due leases) share the hash
-- tag of the declared KEYS, so they lie in the same Redis Cluster slot.

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

-- Raise (before any write) unless each key is absent or of the expected type.
-- `pairs_list`: key1, type1, key2, type2, ...
local function ensure_types(pairs_list)
  for i = 1, #pairs_list, 2 do
    local k, want = pairs_list[i], pairs_list[i + 1]
    local got = redis.call('TYPE', k)['ok']
    if got ~= 'none' and got ~= want then
      return error({err = 'WRONGTYPE seamless: ' .. k .. ' is a ' .. got .. ', expected a '
        .. want .. '; the script changed nothing'})
    end
  end
end

local function job_key(prefix, job_id)
  return prefix .. 'job:' .. job_id
end

local function done_key(prefix, job_id)
  return prefix .. 'jobdone:' .. job_id
end

-- The keys of a job (when there is one) with their types, for ensure_types.
local function job_types(prefix, job_id, into)
  if job_id ~= nil and job_id ~= false and job_id ~= '' then
    table.insert(into, job_key(prefix, job_id))
    table.insert(into, 'hash')
    table.insert(into, done_key(prefix, job_id))
    table.insert(into, 'set')
  end
  return into
end

local function job_progress(prefix, job_id)
  if job_id == nil or job_id == false or job_id == '' then
    return {'', ''}
  end
  local done = redis.call('SCARD', done_key(prefix, job_id))
  local total = redis.call('HGET', job_key(prefix, job_id), 'shards_total') or ''
  return {num_str(done), total}
end

-- job_id, done, total of a key's job, appended to every refusal so that the caller can
-- report the key's real completion ratio.
local function job_fields(prefix, job_id)
  local progress = job_progress(prefix, job_id)
  return job_id or '', progress[1], progress[2]
end

-- A complete/fail/renew is accepted only from the holder of the current live lease, sent by
-- the client that claimed it. `cur` is HMGET state, token, until, holder; `owner` the
-- lease's client, `client` the caller's; `job_id` the lease's job. Returns nil when `token`
-- is that lease's token and `client` its owner, else the refusal:
-- - stale (state, current token, newly expired, holder, job fields) for any other token,
--   whoever sends it: a client guessing tokens learns nothing it could not learn before;
-- - forbidden (state, job fields) for the right token from another client, expired or not,
--   and nothing is written (an expiry is reported by the sweep or the owner's request).
-- A token that names the current lease after it expired is stale too: the key may already
-- be claimable, and an expiry noticed here is reported once (ZREM on the held index decides
-- who reports it).
local function check_live(cur, owner, job_id, key, prefix, token, client, now)
  local state = cur[1] or 'free'
  local jid, done, total = job_fields(prefix, job_id)
  if state ~= 'held' or cur[2] ~= token then
    return {'stale', state, cur[2] or '', '0', cur[4] or '', jid, done, total}
  end
  if owner ~= client then
    return {'forbidden', state, jid, done, total}
  end
  if tonumber(cur[3]) <= now then
    local newly = redis.call('ZREM', prefix .. 'idx:held', key)
    if newly == 1 then
      redis.call('ZADD', prefix .. 'idx:expired', cur[3], key)
    end
    return {'stale', 'expired', cur[2], num_str(newly), cur[4] or '', jid, done, total}
  end
  return nil
end

-- The refusal of a replay (a complete/fail repeated with the token that finished the key)
-- sent by a client other than the one that finished it.
local function forbidden(state, prefix, job_id)
  local jid, done, total = job_fields(prefix, job_id)
  return {'forbidden', state, jid, done, total}
end
