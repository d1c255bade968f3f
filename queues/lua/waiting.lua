-- ARGV: jurisdiction, line. The call ids waiting in that queue, best first, all languages.
local j, line = ARGV[3], ARGV[4]
local items = {}
for _, lang in ipairs(redis.call('SMEMBERS', P .. 'langs')) do
  local z = redis.call('ZRANGE', P .. 'q:' .. j .. ':' .. line .. ':' .. lang, 0, -1, 'WITHSCORES')
  for i = 1, #z, 2 do items[#items + 1] = {tonumber(z[i + 1]), z[i]} end
end
table.sort(items, function(x, y)
  if x[1] ~= y[1] then return x[1] < y[1] end
  return x[2] < y[2]
end)
local out = {}
for i, item in ipairs(items) do out[i] = item[2] end
return out
