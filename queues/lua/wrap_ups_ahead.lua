-- ARGV: how many wrap-ups, and a sorted set (its whole key) whose first score is wanted too.
-- Read only. The first wrap-ups, the earliest to end first, as {agent, ms, agent, ms, ...},
-- and that set's lowest score ('' when it is empty): what the due loop looks at when it
-- wakes, in the same pipeline as the ends it knows are due (one round trip for both).
local wrap_ups = redis.call('ZRANGE', P .. 'wrapup', 0, tonumber(ARGV[3]) - 1, 'WITHSCORES')
local first = redis.call('ZRANGE', ARGV[4], 0, 0, 'WITHSCORES')
return {wrap_ups, first[2] or ''}
