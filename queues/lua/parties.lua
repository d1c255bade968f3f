-- ARGV: call id. The call's channel and agent (nil when unknown): what the desktops' events
-- name. Sent in the same pipeline as the script that changes the call, ahead of it.
return redis.call('HMGET', P .. 'call:' .. ARGV[3], 'channel', 'agent')
