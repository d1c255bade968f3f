-- ARGV: call id, agent id, then writes made with the change (see `also`).
local cid, aid = ARGV[3], ARGV[4]
local c = read(P .. 'call:' .. cid, CALL)
local err = offer_check(cid, c, aid, 'ringing') or also_check(5)
if err then return err end

set_state(aid, {}, 'on_call', '')  -- ringing with this call: offer_check vouches for it
redis.call('HSET', P .. 'call:' .. cid, 'state', 'on_call', 'answered_at', NOW)

-- Service level is measured from entering the queue to the agent answering, in the queue
-- whose agent answered.
local wait = NOW - tonumber(c.enq)
local band = 'a99'
if wait <= 15000 then band = 'a15' elseif wait <= 20000 then band = 'a20' elseif wait <= 30000 then band = 'a30' end
count(c.queue, c.line, band)
local hk = P .. 'hist:' .. c.queue .. ':' .. c.line
if redis.call('LPUSH', hk, string.format('%d', NOW)) > 2 * HISTORY then redis.call('LTRIM', hk, 0, HISTORY - 1) end
also(5)
return true
