-- ARGV: call id, agent id, wrap-up ms, the "queue:line" that wrap-up was computed for ('*': any).
local cid, aid = ARGV[3], ARGV[4]
local c = read(P .. 'call:' .. cid, CALL)
local err = offer_check(cid, c, aid, 'on_call')
if err then return err end
if ARGV[6] ~= '*' and ARGV[6] ~= c.queue .. ':' .. c.line then return {'retry', c.queue, c.line} end

wrap_up(aid, {}, tonumber(ARGV[5]))
forget(cid)
return 1
