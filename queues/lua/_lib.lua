-- Shared by every queue script: queues/engine.py prepends this file to each one.
--
-- ARGV[1] is the key prefix and ARGV[2] the engine's clock (ms); script arguments follow.
-- Keys are built here rather than passed in KEYS because which ones a script touches depends
-- on what it reads (an agent's lines, a call's queues). That is fine on a standalone Redis or
-- Sentinel; on a Cluster, give the prefix a hash tag ("{12315}") so every key shares a slot.
--
-- Nothing here may fail after the first write: Redis does not roll a script back, so every
-- script checks its preconditions first and only then changes state.

local P = ARGV[1]
local NOW = tonumber(ARGV[2])

-- Figures: answers and abandons are counted in one-minute slots, 60 of them (a rolling hour).
local SLOTS = 60
local METRICS = {'answered', 'in15', 'in20', 'in30', 'abandoned', 'callbacks'}
-- Estimated wait: the last HISTORY answers per queue, if no older than HISTORY_MS.
local HISTORY = 20

local function key(...)
  return P .. ':' .. table.concat({...}, ':')
end

local function split(s)
  local out = {}
  for part in string.gmatch(s or '', '[^,]+') do out[#out + 1] = part end
  return out
end

local function hash(k)
  local flat = redis.call('HGETALL', k)
  if #flat == 0 then return nil end
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end

-- Agents -------------------------------------------------------------------------------------

-- Per-queue counts of agents by state (offline agents are not counted: they belong nowhere).
local function count_state(a, state, delta)
  if state == 'offline' then return end
  for _, line in ipairs(split(a.lines)) do
    redis.call('HINCRBY', key('ast', a.home, line), state, delta)
  end
end

local function set_state(aid, a, state, reason)
  if a.state ~= state then
    count_state(a, a.state, -1)
    count_state(a, state, 1)
  end
  a.state = state
  redis.call('HSET', key('agent', aid), 'state', state, 'reason', reason, 'since', NOW)
end

-- One available-set per (home, line, language) the agent serves: finding a free agent for a
-- call is then one ZRANGE on one set, whatever the skills of the other agents.
local function available_keys(a)
  local out = {}
  for _, line in ipairs(split(a.lines)) do
    for _, lang in ipairs(split(a.langs)) do out[#out + 1] = key('av', a.home, line, lang) end
  end
  return out
end

local function leave_available(aid, a)
  for _, k in ipairs(available_keys(a)) do redis.call('ZREM', k, aid) end
end

local function wrap_up(aid, a, ms)
  local until_ms = NOW + ms
  set_state(aid, a, 'wrap_up', '')
  redis.call('HSET', key('agent', aid), 'call', '', 'wrap_until', until_ms)
  redis.call('ZADD', key('wrapup'), until_ms, aid)
end

-- Calls --------------------------------------------------------------------------------------

-- The jurisdictions whose queue a call sits in: its own, plus those it overflowed to.
local function call_queues(cid)
  return redis.call('HKEYS', key('cq', cid))
end

local function put_in_queue(cid, c, j)
  redis.call('ZADD', key('q', j, c.line, c.lang), c.score, cid)
  redis.call('ZADD', key('age', j, c.line), c.enq, cid)
  redis.call('SADD', key('queues'), j .. ':' .. c.line)
end

local function take_from_queues(cid, c)
  for _, j in ipairs(call_queues(cid)) do
    redis.call('ZREM', key('q', j, c.line, c.lang), cid)
    redis.call('ZREM', key('age', j, c.line), cid)
  end
end

local function forget(cid)
  redis.call('DEL', key('call', cid), key('cq', cid))
  redis.call('SREM', key('calls'), cid)
end

-- Matching -----------------------------------------------------------------------------------

-- Of the agents free in these queues for the call's line and language, the one idle longest;
-- ties go to the smaller id so that every process would pick the same one.
local function longest_idle(c, queues)
  local best, best_idle, best_q
  for _, j in ipairs(queues) do
    local head = redis.call('ZRANGE', key('av', j, c.line, c.lang), 0, 0, 'WITHSCORES')
    if #head > 0 then
      local idle = tonumber(head[2])
      if best == nil or idle < best_idle or (idle == best_idle and head[1] < best) then
        best, best_idle, best_q = head[1], idle, j
      end
    end
  end
  return best, best_q
end

-- The best call waiting in the agent's home queues for the agent's lines and languages.
local function best_call(a)
  local best, best_score
  for _, line in ipairs(split(a.lines)) do
    for _, lang in ipairs(split(a.langs)) do
      local head = redis.call('ZRANGE', key('q', a.home, line, lang), 0, 0, 'WITHSCORES')
      if #head > 0 then
        local s = tonumber(head[2])
        if best == nil or s < best_score or (s == best_score and head[1] < best) then
          best, best_score = head[1], s
        end
      end
    end
  end
  return best
end

-- The one place where a call meets an agent: it leaves every queue, the agent every
-- available-set, both are marked. Being a single script run, nothing can interleave.
local function assign(cid, c, aid, a, j)
  take_from_queues(cid, c)
  redis.call('HSET', key('call', cid), 'state', 'ringing', 'agent', aid, 'queue', j, 'offered_at', NOW)
  leave_available(aid, a)
  set_state(aid, a, 'ringing', '')
  redis.call('HSET', key('agent', aid), 'call', cid)
  return {cid, c.channel, aid, a.endpoint, j, c.line}
end

-- Figures: count in the current minute's slot, first clearing what the slot held an hour ago.
local function count(j, line, names)
  local k = key('st', j, line)
  local minute = math.floor(NOW / 60000)
  local slot = minute % SLOTS
  if redis.call('HGET', k, slot .. ':m') ~= string.format('%d', minute) then
    for _, m in ipairs(METRICS) do redis.call('HDEL', k, slot .. ':' .. m) end
    redis.call('HSET', k, slot .. ':m', string.format('%d', minute))
  end
  for _, m in ipairs(names) do redis.call('HINCRBY', k, slot .. ':' .. m, 1) end
end

-- Precondition shared by answered, ring_no_answer and hung_up.
local function offer_check(cid, c, aid, state)
  if not c then return fail('UNKNOWN_CALL', 'no call ' .. cid) end
  if c.state ~= state or c.agent ~= aid then
    local at = (c.agent ~= nil and c.agent ~= '') and (' at agent ' .. c.agent) or ''
    return fail('CALL_STATE', 'call ' .. cid .. ' is ' .. c.state .. at .. ', not ' .. state .. ' at agent ' .. aid)
  end
  return nil
end

-- Script body follows.
