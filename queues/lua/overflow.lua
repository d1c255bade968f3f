-- ARGV: call id, jurisdiction to overflow to.
local cid, j = ARGV[3], ARGV[4]
local c = read(P .. 'call:' .. cid, CALL)
if not c then return fail('UNKNOWN_CALL', 'no call ' .. cid) end
-- Already there: nothing to do (idempotent, e.g. two processes' timers firing).
if redis.call('HSETNX', P .. 'cq:' .. cid, j, NOW) == 0 then return false end
-- Ringing or connected: the jurisdiction is remembered, so that after a ring-no-answer the
-- call waits there too; it joins no queue now.
if c.state ~= 'waiting' then return false end
put_in_queue(cid, c, j)
local aid, q = longest_idle(c, {j})
if aid then return assign(cid, c, aid, read(P .. 'agent:' .. aid, AGENT), q) end
return false
