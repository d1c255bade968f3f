-- ARGV: call id, reason, wrap-up ms, the "queue:line" that wrap-up was computed for ('*': any).
-- Returns 1 when removed, 0 for an unknown call, {'retry', queue, line} when the engine must
-- compute the wrap-up for another queue.
local cid, reason = ARGV[3], ARGV[4]
local c = read(P .. 'call:' .. cid, CALL)
if not c then return 0 end
if c.state == 'on_call' and ARGV[6] ~= '*' and ARGV[6] ~= c.queue .. ':' .. c.line then
  return {'retry', c.queue, c.line}
end

if c.state == 'waiting' or c.state == 'ringing' then
  -- Lost before anyone spoke to the caller: counted in every queue the call waited in. A caller
  -- who chose to be called back is not lost.
  local metric = (reason == 'callback') and 'callbacks' or 'abandoned'
  for _, j in ipairs(call_queues(cid)) do count(j, c.line, metric) end
end

if c.state == 'waiting' then
  take_from_queues(cid, c)
elseif c.state == 'ringing' then
  -- The caller left while the agent's phone rang. The agent did nothing wrong, so keeps their
  -- place in the idle order; their wrap-up is due at once, so wrap_up_due() hands them back
  -- to whichever process runs wrap-ups (this call returns no offer to act on).
  local idle = redis.call('HGET', P .. 'agent:' .. c.agent, 'idle_since') or ''
  redis.call('HSET', P .. 'agent:' .. c.agent, 'resume_idle', idle)
  wrap_up(c.agent, {}, 0)
else
  wrap_up(c.agent, {}, tonumber(ARGV[5]))
end
forget(cid)
return 1
