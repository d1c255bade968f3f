-- ARGV: call id, agent id. The agent goes on break; the call goes back into every queue it
-- was in with its original score (so ahead of every call that came after it) and is offered
-- to the longest-idle free agent of those queues, if any.
local cid, aid = ARGV[3], ARGV[4]
local c = hash(key('call', cid))
local err = offer_check(cid, c, aid, 'ringing')
if err then return err end

local a = hash(key('agent', aid))
set_state(aid, a, 'break', 'no_answer')
redis.call('HSET', key('agent', aid), 'call', '', 'resume_idle', '')
redis.call('HSET', key('call', cid), 'state', 'waiting', 'agent', '', 'queue', '', 'offered_at', '')

local queues = call_queues(cid)
for _, j in ipairs(queues) do put_in_queue(cid, c, j) end
local other, j = longest_idle(c, queues)
if other then return assign(cid, c, other, hash(key('agent', other)), j) end
return false
