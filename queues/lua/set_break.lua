-- ARGV: agent id, reason.
local aid = ARGV[3]
local a = read(P .. 'agent:' .. aid, AGENT)
if not a then return fail('UNKNOWN_AGENT', 'no agent ' .. aid) end
if a.state == 'offline' then return fail('AGENT_STATE', 'agent ' .. aid .. ' is offline: log in first') end
if a.state == 'ringing' or a.state == 'on_call' then
  return fail('AGENT_STATE', 'agent ' .. aid .. ' is ' .. a.state .. ' with call ' .. a.call ..
              ': report answered/ring_no_answer/hung_up first')
end
if a.state == 'available' then leave_available(aid, a) end
redis.call('ZREM', P .. 'wrapup', aid)
-- A break gives up the agent's place in the idle order.
set_state(aid, a, 'break', ARGV[4], {'wrap_until', '', 'resume_idle', ''})
return true
