-- ARGV: minimum interval (ms). 1 when this process may publish the figures now, else 0: one
-- publication per interval across every process sharing the prefix.
local k = P .. 'figures:last'
local last = tonumber(redis.call('GET', k) or '')
-- NOW < last: a process with a clock behind another's; let it through rather than go silent.
if last and NOW >= last and NOW - last < tonumber(ARGV[3]) then return 0 end
redis.call('SET', k, string.format('%d', NOW))
return 1
