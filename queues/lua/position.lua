-- ARGV: call id, history window (ms). Returns {position, estimated wait ms or -1}, {0, -1}
-- when the call is no longer waiting, nil for an unknown call.
--
-- The position counts every call ahead in the (jurisdiction, line) queue, whatever its
-- language; the best of the queues the call sits in is reported. The estimate is the position
-- times that queue's recent interval between answers: the mean gap between its answers of the
-- last window (at most HISTORY of them, so at least two are needed), or the time since the last
-- answer if that is longer already (a queue nobody answers any more must not look fast).
local cid, window = ARGV[3], tonumber(ARGV[4])
local c = read(P .. 'call:' .. cid, CALL)
if not c then return false end
if c.state ~= 'waiting' then return {0, -1} end

local langs = redis.call('SMEMBERS', P .. 'langs')
local best, best_q
for _, j in ipairs(call_queues(cid)) do
  local ahead = redis.call('ZRANK', P .. 'q:' .. j .. ':' .. c.line .. ':' .. c.lang, cid) or 0
  for _, lang in ipairs(langs) do
    if lang ~= c.lang then
      ahead = ahead + redis.call('ZCOUNT', P .. 'q:' .. j .. ':' .. c.line .. ':' .. lang, '-inf', '(' .. c.score)
    end
  end
  if best == nil or ahead < best then best, best_q = ahead, j end
end
local position = best + 1

local n, oldest, newest = 0, nil, nil
for _, entry in ipairs(redis.call('LRANGE', P .. 'hist:' .. best_q .. ':' .. c.line, 0, HISTORY - 1)) do
  local at = tonumber(entry)
  if NOW - at <= window then
    n = n + 1
    if oldest == nil or at < oldest then oldest = at end
    if newest == nil or at > newest then newest = at end
  end
end
if n < 2 then return {position, -1} end
local gap = math.max((newest - oldest) / (n - 1), NOW - newest)
return {position, math.floor(position * gap)}
