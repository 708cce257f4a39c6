-- Count one request against a worker's rate limit: a fixed window per identity, from the
-- identity's first request in a wall-clock second to the end of that second.
-- KEYS: the identity's counter
-- ARGV: limit (requests per second)
-- Returns '0' when allowed, else the milliseconds until the window ends. The counter is the
-- only key it writes; the lease script runs only after it allowed the request.
local counter, limit = KEYS[1], tonumber(ARGV[1])
ensure_types({counter, 'string'})
local count = redis.call('INCR', counter)
if count == 1 then
  redis.call('PEXPIRE', counter, 1000 - (now_ms() % 1000))
end
if count > limit then
  local left = redis.call('PTTL', counter)
  if left < 1 then
    left = 1
  end
  return num_str(left)
end
return '0'
