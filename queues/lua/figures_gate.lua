-- ARGV: minimum interval (ms), then '1' when figures go out only while somebody watches them.
-- 1 when this process may publish the figures now; 0 when another publication is less than the
-- interval old (one per interval across every process sharing the prefix); -1 when nobody
-- watches (no wallboard open in any process: a snapshot reads every agent's state, several
-- times a call at a quiet hour, for nobody).
if ARGV[4] == '1' and redis.call('EXISTS', P .. 'figures:watched') == 0 then return -1 end
local k = P .. 'figures:last'
local last = tonumber(redis.call('GET', k) or '')
-- NOW < last: a process with a clock behind another's; let it through rather than go silent.
if last and NOW >= last and NOW - last < tonumber(ARGV[3]) then return 0 end
redis.call('SET', k, string.format('%d', NOW))
return 1
