-- ARGV: call id, channel id, jurisdiction, line, priority, language, enqueued at (ms), score.
local cid = ARGV[3]
local ck = P .. 'call:' .. cid
local known = redis.call('HGET', ck, 'state')
if known then return fail('CALL_STATE', 'call ' .. cid .. ' is already ' .. known) end

local c = {channel = ARGV[4], jur = ARGV[5], line = ARGV[6], lang = ARGV[8], enq = ARGV[9], score = ARGV[10]}
redis.call('HSET', ck, 'state', 'waiting', 'id', cid, 'channel', c.channel, 'jur', c.jur, 'line', c.line,
           'prio', ARGV[7], 'lang', c.lang, 'enq', c.enq, 'score', c.score, 'agent', '', 'queue', '')
redis.call('HSET', P .. 'cq:' .. cid, c.jur, NOW)
redis.call('SADD', P .. 'calls', cid)
redis.call('SADD', P .. 'langs', c.lang)
put_in_queue(cid, c, c.jur)

local aid, j = longest_idle(c, {c.jur})
if aid then return assign(cid, c, aid, read(P .. 'agent:' .. aid, AGENT), j) end
return false
