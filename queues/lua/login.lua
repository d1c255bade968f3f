-- ARGV: agent id, home, lines (comma-joined), languages (comma-joined), endpoint.
-- A new or offline agent starts on break ("login"): set_available says when they are ready.
-- Logging in again replaces the profile; an available agent goes back on break (their new
-- queues may hold calls, and login offers none); a ringing, connected or wrapping-up agent
-- keeps their state and call.
local aid = ARGV[3]
local ak = P .. 'agent:' .. aid
local old = read(ak, AGENT)
local state = old and old.state or 'offline'
if state ~= 'offline' then
  if state == 'available' then leave_available(aid, old) end
  staff(aid, old, false)
end

local a = {home = ARGV[4], lines = ARGV[5], langs = ARGV[6]}
redis.call('HSET', ak, 'id', aid, 'home', a.home, 'lines', a.lines, 'langs', a.langs, 'endpoint', ARGV[7])
if state == 'offline' or state == 'available' then
  state = 'break'
  redis.call('HSET', ak, 'state', state, 'reason', 'login', 'since', NOW, 'call', '', 'resume_idle', '')
end
staff(aid, a, true)
redis.call('SADD', P .. 'agents', aid)
for _, line in ipairs(split(a.lines)) do redis.call('SADD', P .. 'queues', a.home .. ':' .. line) end
return state
