-- ARGV: call id, channel id, jurisdiction, line, priority, language, enqueued at (ms), score,
-- the key of a place kept for the caller ('' for none) and the score's priority part.
-- Returns {1 if the kept place was taken else 0, the offer's fields if an agent was free}.
local cid = ARGV[3]
local ck = P .. 'call:' .. cid
local known = redis.call('HGET', ck, 'state')
if known then return fail('CALL_STATE', 'call ' .. cid .. ' is already ' .. known) end

-- A caller who gave up waiting and calls back soon takes their first place (the key holds when
-- they first queued; QueueService.keep_place). Read here, not in a round trip of its own.
local enq, score, kept = ARGV[9], ARGV[10], 0
if ARGV[11] ~= '' then
  local at = redis.call('GETDEL', ARGV[11])
  if at then
    -- Both parts are integers below 2^53: exact as Lua numbers, written back with %d.
    enq, score, kept = at, string.format('%d', tonumber(ARGV[12]) + tonumber(at)), 1
  end
end

local c = {channel = ARGV[4], jur = ARGV[5], line = ARGV[6], lang = ARGV[8], enq = enq, score = score}
redis.call('HSET', ck, 'state', 'waiting', 'id', cid, 'channel', c.channel, 'jur', c.jur, 'line', c.line,
           'prio', ARGV[7], 'lang', c.lang, 'enq', c.enq, 'score', c.score, 'agent', '', 'queue', '')
redis.call('HSET', P .. 'cq:' .. cid, c.jur, NOW)
redis.call('SADD', P .. 'calls', cid)
redis.call('SADD', P .. 'langs', c.lang)
put_in_queue(cid, c, c.jur)

local aid, j = longest_idle(c, {c.jur})
if aid then return {kept, unpack(assign(cid, c, aid, read(P .. 'agent:' .. aid, AGENT), j))} end
return {kept}
