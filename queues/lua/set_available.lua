-- ARGV: agent id, and 'due' to end only a wrap-up that is due (else 0: nothing changed; the
-- wrap-up loop ends the ones it started by name, in the pipeline of its look, before reading
-- them). Returns an offer, or nil when the agent now waits for a call.
local aid = ARGV[3]
if ARGV[4] == 'due' then
  local ends = redis.call('ZSCORE', P .. 'wrapup', aid)
  if not ends or tonumber(ends) > NOW then return 0 end
end
local a = read(P .. 'agent:' .. aid, AGENT)
if not a then return fail('UNKNOWN_AGENT', 'no agent ' .. aid) end
if a.state == 'available' then return false end
if a.state == 'offline' then
  return fail('AGENT_STATE', 'agent ' .. aid .. ' is offline: log in first')
end
if a.state ~= 'break' and a.state ~= 'wrap_up' then
  return fail('AGENT_STATE', 'agent ' .. aid .. ' is ' .. a.state .. ' with call ' .. a.call ..
              ': only an agent on break or in wrap-up can become available')
end
if a.state == 'wrap_up' then redis.call('ZREM', P .. 'wrapup', aid) end
local idle = a.resume_idle
if idle == '' then idle = NOW end
local fields = {'idle_since', idle, 'resume_idle', '', 'wrap_until', ''}

local cid = best_call(a)
if cid then return assign(cid, read(P .. 'call:' .. cid, CALL), aid, a, a.home, fields) end
for _, k in ipairs(available_keys(a)) do redis.call('ZADD', k, idle, aid) end
set_state(aid, a, 'available', '', fields)
return false
