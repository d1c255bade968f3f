-- ARGV: call id, agent id.
local cid, aid = ARGV[3], ARGV[4]
local c = hash(key('call', cid))
local err = offer_check(cid, c, aid, 'ringing')
if err then return err end

set_state(aid, hash(key('agent', aid)), 'on_call', '')
redis.call('HSET', key('call', cid), 'state', 'on_call', 'answered_at', NOW)

-- Service level is measured from entering the queue to the agent answering, in the queue
-- whose agent answered.
local wait = math.max(0, NOW - tonumber(c.enq))
local names = {'answered'}
if wait <= 15000 then names[#names + 1] = 'in15' end
if wait <= 20000 then names[#names + 1] = 'in20' end
if wait <= 30000 then names[#names + 1] = 'in30' end
count(c.queue, c.line, names)
local hk = key('hist', c.queue, c.line)
redis.call('LPUSH', hk, string.format('%d', NOW))
redis.call('LTRIM', hk, 0, HISTORY - 1)
return true
