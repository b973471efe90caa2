package jobs

import "github.com/redis/go-redis/v9"

// What retryScript and deleteScript did.
const (
	adminDone     = 0 // done
	adminNotDead  = 1 // nothing done: the job is not dead (status in the reply)
	adminNotFound = 2 // nothing done: no such job
	adminNoEntry  = 3 // nothing done: neither its dead letter nor its payload is left
)

// retryScript queues a dead job again under its id: a new entry from its
// dead letter (or, without one, from its hash), attempt 1; the dead letter
// deleted; the hash back to queued with attempts 0, its history kept and
// marked.
//
//	KEYS: job hash, stream, dead-letter stream, failed index, queued index, attempt history
//	ARGV: now (Unix s), now (Unix ms), TTL ms, history marker (JSON), history cap
var retryScript = redis.NewScript(`
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return {2} end
local h = {}
for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
if h.status ~= 'failed' then return {1, h.status or ''} end
local skip = {error = true, worker = true, failed_at = true, stream_id = true, attempt = true, enqueued_at = true}
local out = {}
local letter = nil
if h.dead_id then
  local e = redis.call('XRANGE', KEYS[3], h.dead_id, h.dead_id)
  if e[1] then letter = e[1][2] end
end
if letter then
  for i = 1, #letter, 2 do
    if not skip[letter[i]] then out[#out + 1] = letter[i]; out[#out + 1] = letter[i + 1] end
  end
elseif h.payload and h.type then
  out = {'id', h.id, 'type', h.type, 'payload', h.payload}
  if h.max_attempts then out[#out + 1] = 'max_attempts'; out[#out + 1] = h.max_attempts end
else
  return {3}
end
out[#out + 1] = 'attempt'; out[#out + 1] = '1'
out[#out + 1] = 'enqueued_at'; out[#out + 1] = ARGV[1]
redis.call('XADD', KEYS[2], '*', unpack(out))
if h.dead_id then redis.call('XDEL', KEYS[3], h.dead_id) end
redis.call('HDEL', KEYS[1], 'error', 'result', 'dead_id')
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'updated_at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[4], h.id)
redis.call('ZADD', KEYS[5], ARGV[2], h.id)
redis.call('RPUSH', KEYS[6], ARGV[4])
redis.call('LTRIM', KEYS[6], -tonumber(ARGV[5]), -1)
redis.call('PEXPIRE', KEYS[6], ARGV[3])
return {0}
`)

// deleteScript deletes a dead job: its dead letter, hash, history and
// index entry.
//
//	KEYS: job hash, dead-letter stream, failed index, attempt history
//	ARGV: id
var deleteScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'status', 'dead_id')
if not st[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {2}
end
if st[1] ~= 'failed' then return {1, st[1]} end
if st[2] then redis.call('XDEL', KEYS[2], st[2]) end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
return {0}
`)

// queueInfoScript reads what Stats does not: Redis's time, the oldest
// entry no worker has read yet (the group's lag), the jobs that finished
// in the last minute, and whether the queue is paused.
//
//	KEYS: stream, paused, succeeded index, failed index
//	ARGV: group
//	returns {now ms, oldest waiting entry id or '', waiting, finished in the last 60 s, paused}
var queueInfoScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last, pending, grouped = '0-0', 0, false
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok and type(groups) == 'table' then
  for _, g in ipairs(groups) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f.name == ARGV[1] then last = f['last-delivered-id']; pending = tonumber(f.pending) or 0; grouped = true end
  end
end
local oldest = ''
local e = redis.call('XRANGE', KEYS[1], last, '+', 'COUNT', 2)
for _, m in ipairs(e) do
  if m[1] ~= last or not grouped then oldest = m[1]; break end
end
local waiting = redis.call('XLEN', KEYS[1]) - pending
local since = now - 60000
local done = redis.call('ZCOUNT', KEYS[3], since, '+inf') + redis.call('ZCOUNT', KEYS[4], since, '+inf')
return {now, oldest, waiting, done, redis.call('EXISTS', KEYS[2])}
`)
