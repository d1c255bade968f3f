-- ARGV: call id, agent id. The agent goes on break; the call goes back into every queue it
-- was in with its original score (so ahead of every call that came after it) and is offered
-- to the longest-idle free agent of those queues, if any.
local cid, aid = ARGV[3], ARGV[4]
local c = read(P .. 'call:' .. cid, CALL)
local err = offer_check(cid, c, aid, 'ringing')
if err then return err end

set_state(aid, {}, 'break', 'no_answer', {'call', '', 'resume_idle', ''})
redis.call('HSET', P .. 'call:' .. cid, 'state', 'waiting', 'agent', '', 'queue', '', 'offered_at', '')

local queues = call_queues(cid)
for _, j in ipairs(queues) do put_in_queue(cid, c, j) end
local other, j = longest_idle(c, queues)
if other then return assign(cid, c, other, read(P .. 'agent:' .. other, AGENT), j) end
return false
