-- ARGV: call id, agent id, pause ms. The agent's phone answered but the call could not be put
-- through to them (an ARI step failed or timed out): nobody is to blame, least of all the agent.
-- The agent goes to a short wrap-up (reason "connect_failed") that ends by itself, keeping their
-- place in the idle order; the call goes back into every queue it was in with its original
-- score (at the head) and is offered at once to another free agent of those queues, if any.
local cid, aid, ms = ARGV[3], ARGV[4], tonumber(ARGV[5])
local c = read(P .. 'call:' .. cid, CALL)
local err = offer_check(cid, c, aid, 'ringing')
if err then return err end

local idle = redis.call('HGET', P .. 'agent:' .. aid, 'idle_since') or ''
local until_ms = NOW + ms
set_state(aid, {}, 'wrap_up', 'connect_failed', {'call', '', 'resume_idle', idle, 'wrap_until', until_ms})
redis.call('ZADD', P .. 'wrapup', until_ms, aid)
redis.call('HSET', P .. 'call:' .. cid, 'state', 'waiting', 'agent', '', 'queue', '', 'offered_at', '')

local queues = call_queues(cid)
for _, j in ipairs(queues) do put_in_queue(cid, c, j) end
local other, j = longest_idle(c, queues)
if other then return assign(cid, c, other, read(P .. 'agent:' .. other, AGENT), j) end
return false
