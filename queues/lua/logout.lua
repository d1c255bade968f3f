-- ARGV: agent id.
local aid = ARGV[3]
local a = read(P .. 'agent:' .. aid, AGENT)
if not a then return fail('UNKNOWN_AGENT', 'no agent ' .. aid) end
if a.state == 'ringing' or a.state == 'on_call' then
  return fail('AGENT_STATE', 'agent ' .. aid .. ' is ' .. a.state .. ' with call ' .. a.call ..
              ': report ring_no_answer or hung_up before logging out')
end
if a.state == 'offline' then return false end
if a.state == 'available' then leave_available(aid, a) end
redis.call('ZREM', P .. 'wrapup', aid)
set_state(aid, a, 'offline', '', {'wrap_until', '', 'resume_idle', ''})
staff(aid, a, false)
redis.call('SREM', P .. 'agents', aid)
return true
