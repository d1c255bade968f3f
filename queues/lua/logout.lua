-- ARGV: agent id.
local aid = ARGV[3]
local a = hash(key('agent', aid))
if not a then return fail('UNKNOWN_AGENT', 'no agent ' .. aid) end
if a.state == 'ringing' or a.state == 'on_call' then
  return fail('AGENT_STATE', 'agent ' .. aid .. ' is ' .. a.state .. ' with call ' .. a.call ..
              ': report ring_no_answer or hung_up before logging out')
end
if a.state == 'offline' then return false end
leave_available(aid, a)
redis.call('ZREM', key('wrapup'), aid)
set_state(aid, a, 'offline', '')
redis.call('HSET', key('agent', aid), 'wrap_until', '', 'resume_idle', '')
redis.call('SREM', key('agents'), aid)
return true
