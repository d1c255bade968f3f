-- ARGV: call id, agent id, wrap-up ms, the "queue:line" that wrap-up was computed for ('*': any),
-- then writes made with the change (see `also`).
local cid, aid = ARGV[3], ARGV[4]
local c = read(P .. 'call:' .. cid, CALL)
local err = offer_check(cid, c, aid, 'on_call') or also_check(7)
if err then return err end
if ARGV[6] ~= '*' and ARGV[6] ~= c.queue .. ':' .. c.line then return {'retry', c.queue, c.line} end

wrap_up(aid, {}, tonumber(ARGV[5]))
forget(cid)
also(7)
return 1
