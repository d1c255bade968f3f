-- ARGV: agent id, home, lines (comma-joined), languages (comma-joined), endpoint.
-- A new or offline agent starts on break ("login"): set_available says when they are ready.
-- Logging in again replaces the profile; an available agent goes back on break (their new
-- queues may hold calls, and login offers none); a ringing, connected or wrapping-up agent
-- keeps their state and call.
local aid = ARGV[3]
local ak = key('agent', aid)
local old = hash(ak)
local state = 'offline'
if old then
  state = old.state
  if state == 'available' then leave_available(aid, old) end
  count_state(old, state, -1)
end
local new_state = state
if state == 'offline' or state == 'available' then new_state = 'break' end

local a = {home = ARGV[4], lines = ARGV[5], langs = ARGV[6], endpoint = ARGV[7]}
redis.call('HSET', ak, 'id', aid, 'home', a.home, 'lines', a.lines, 'langs', a.langs, 'endpoint', a.endpoint)
count_state(a, new_state, 1)
if new_state ~= state or not old then
  redis.call('HSET', ak, 'state', new_state, 'reason', 'login', 'since', NOW, 'call', '', 'resume_idle', '')
end
redis.call('SADD', key('agents'), aid)
for _, line in ipairs(split(a.lines)) do redis.call('SADD', key('queues'), a.home .. ':' .. line) end
return new_state
