-- Count one read request (inspect, list) against the worker's rate limit.
-- ARGV: prefix, rl_identity, rl_limit
local wait = rate_limited(ARGV[1], ARGV[2], tonumber(ARGV[3]), now_ms())
return num_str(wait)
