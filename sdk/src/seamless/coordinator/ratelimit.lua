-- Count one read request (inspect, list) against the worker's rate limit.
-- ARGV: prefix, rl_identity, rl_limit
local now = now_ms()
local rl = rl_key(ARGV[1], ARGV[2], tonumber(ARGV[3]), now)
if rl then
  ensure_types({rl, 'string'})
end
return num_str(rate_limited(rl, tonumber(ARGV[3]), now))
