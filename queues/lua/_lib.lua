-- Shared by every queue script: queues/engine.py prepends this file to each one.
--
-- ARGV[1] is the key prefix and ARGV[2] the engine's clock (ms); script arguments follow.
-- Keys are built here rather than passed in KEYS because which ones a script touches depends
-- on what it reads (an agent's lines, a call's queues). That is fine on a standalone Redis or
-- Sentinel; on a Cluster, give the prefix a hash tag ("{12315}") so every key shares a slot.
--
-- Nothing here may fail after the first write: Redis does not roll a script back, so every
-- script checks its preconditions first and only then changes state.
--
-- This runs on every assignment, so it is written for Redis's time: hashes are read with HMGET
-- of the fields a script needs (HGETALL replies cost per field), keys are built by plain
-- concatenation, and writes to one hash are made in one HSET.

local P = ARGV[1] .. ':'
local NOW = tonumber(ARGV[2])

-- Figures: answers and abandons are counted in one-minute slots, 60 of them (a rolling hour).
-- An answer counts once, in the band of its wait: a15 (<= 15 s), a20, a30, a99 (longer).
local SLOTS = 60
-- Estimated wait: the last HISTORY answers per queue (the list is trimmed now and then, so it
-- may hold up to twice that; readers take the first HISTORY).
local HISTORY = 20

local AGENT = {'state', 'home', 'lines', 'langs', 'endpoint', 'call', 'idle_since', 'resume_idle'}
local CALL = {'state', 'channel', 'jur', 'line', 'lang', 'enq', 'score', 'agent', 'queue'}

-- The named fields of a hash as a table (missing fields as ''), nil when there is no such
-- hash: 'state' comes first and every agent and call has one.
local function read(k, names)
  local values = redis.call('HMGET', k, unpack(names))
  if not values[1] then return nil end
  local t = {}
  for i = 1, #names do t[names[i]] = values[i] or '' end
  return t
end

local function split(s)
  local out = {}
  for part in string.gmatch(s, '[^,]+') do out[#out + 1] = part end
  return out
end

local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end

-- What the caller asked to write with the script's own change, and only if it is made (a
-- call's state saved, news of the change published): ARGV from `first` on, in threes
-- (command, key, value). One write less a transition than saving after the reply (issue 15).
-- Checked before the script's first write (`also_check`), so that nothing fails after it.
local ALSO = {SET = true, PUBLISH = true}

local function also_check(first)
  if (#ARGV - first + 1) % 3 ~= 0 then return fail('BAD_ALSO', 'writes come in threes') end
  for i = first, #ARGV, 3 do
    if not ALSO[ARGV[i]] then return fail('BAD_ALSO', 'not a write a script makes: ' .. ARGV[i]) end
  end
end

local function also(first)
  for i = first, #ARGV, 3 do redis.call(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
end

-- Agents -------------------------------------------------------------------------------------

-- Moves the agent to a state; `extra` are more field/value pairs for the same HSET. (Agents by
-- state per queue are counted when the figures are read, from P:staff sets: counters kept
-- here would cost a write per line on every state change, several per call.)
local function set_state(aid, a, state, reason, extra)
  a.state = state
  local args = {P .. 'agent:' .. aid, 'state', state, 'reason', reason, 'since', NOW}
  for _, v in ipairs(extra or {}) do args[#args + 1] = v end
  redis.call('HSET', unpack(args))
end

-- The agent is logged in (joins = true) or out, for each queue (home, line) they serve.
local function staff(aid, a, joins)
  for _, line in ipairs(split(a.lines)) do
    redis.call(joins and 'SADD' or 'SREM', P .. 'staff:' .. a.home .. ':' .. line, aid)
  end
end

-- One available-set per (home, line, language) the agent serves: finding a free agent for a
-- call is then one ZRANGE on one set, whatever the skills of the other agents.
local function available_keys(a)
  local out = {}
  for _, line in ipairs(split(a.lines)) do
    for _, lang in ipairs(split(a.langs)) do out[#out + 1] = P .. 'av:' .. a.home .. ':' .. line .. ':' .. lang end
  end
  return out
end

local function leave_available(aid, a)
  for _, k in ipairs(available_keys(a)) do redis.call('ZREM', k, aid) end
end

local function wrap_up(aid, a, ms)
  local until_ms = NOW + ms
  set_state(aid, a, 'wrap_up', '', {'call', '', 'wrap_until', until_ms})
  redis.call('ZADD', P .. 'wrapup', until_ms, aid)
end

-- Calls --------------------------------------------------------------------------------------

-- The jurisdictions whose queue a call sits in: its own, plus those it overflowed to.
local function call_queues(cid)
  return redis.call('HKEYS', P .. 'cq:' .. cid)
end

local function put_in_queue(cid, c, j)
  redis.call('ZADD', P .. 'q:' .. j .. ':' .. c.line .. ':' .. c.lang, c.score, cid)
  redis.call('ZADD', P .. 'age:' .. j .. ':' .. c.line, c.enq, cid)
  redis.call('SADD', P .. 'queues', j .. ':' .. c.line)
end

local function take_from_queues(cid, c)
  for _, j in ipairs(call_queues(cid)) do
    redis.call('ZREM', P .. 'q:' .. j .. ':' .. c.line .. ':' .. c.lang, cid)
    redis.call('ZREM', P .. 'age:' .. j .. ':' .. c.line, cid)
  end
end

local function forget(cid)
  redis.call('DEL', P .. 'call:' .. cid, P .. 'cq:' .. cid)
  redis.call('SREM', P .. 'calls', cid)
end

-- Matching -----------------------------------------------------------------------------------

-- Of the agents free in these queues for the call's line and language, the one idle longest;
-- ties go to the smaller id so that every process would pick the same one.
local function longest_idle(c, queues)
  local best, best_idle, best_q
  for _, j in ipairs(queues) do
    local head = redis.call('ZRANGE', P .. 'av:' .. j .. ':' .. c.line .. ':' .. c.lang, 0, 0, 'WITHSCORES')
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
      local head = redis.call('ZRANGE', P .. 'q:' .. a.home .. ':' .. line .. ':' .. lang, 0, 0, 'WITHSCORES')
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
-- `extra`: more agent fields to set in the same HSET.
local function assign(cid, c, aid, a, j, extra)
  take_from_queues(cid, c)
  redis.call('HSET', P .. 'call:' .. cid, 'state', 'ringing', 'agent', aid, 'queue', j, 'offered_at', NOW)
  if a.state == 'available' then leave_available(aid, a) end
  local fields = {'call', cid}
  for _, v in ipairs(extra or {}) do fields[#fields + 1] = v end
  set_state(aid, a, 'ringing', '', fields)
  return {cid, c.channel, aid, a.endpoint, j, c.line}
end

-- Figures: count in the current minute's slot, first clearing what the slot held an hour ago.
local function count(j, line, name)
  local k = P .. 'st:' .. j .. ':' .. line
  local minute = string.format('%d', math.floor(NOW / 60000))
  local slot = tostring(tonumber(minute) % SLOTS)
  if redis.call('HGET', k, slot .. ':m') ~= minute then
    redis.call('HDEL', k, slot .. ':a15', slot .. ':a20', slot .. ':a30', slot .. ':a99',
               slot .. ':abandoned', slot .. ':callbacks')
    redis.call('HSET', k, slot .. ':m', minute)
  end
  redis.call('HINCRBY', k, slot .. ':' .. name, 1)
end

-- Precondition shared by answered, ring_no_answer and hung_up.
local function offer_check(cid, c, aid, state)
  if not c then return fail('UNKNOWN_CALL', 'no call ' .. cid) end
  if c.state ~= state or c.agent ~= aid then
    local at = (c.agent ~= '') and (' at agent ' .. c.agent) or ''
    return fail('CALL_STATE', 'call ' .. cid .. ' is ' .. c.state .. at .. ', not ' .. state .. ' at agent ' .. aid)
  end
  return nil
end

-- Script body follows.
