package jobs

import "github.com/redis/go-redis/v9"

// What enqueueScript did.
const (
	enqueueQueued = 0 // the job was added
	enqueueExists = 1 // nothing was added: the job (id in the reply) exists
	enqueueFull   = 2 // nothing was added: the backlog (count in the reply) is at the limit
)

// enqueueScript adds a job unless its idempotency key or its id is taken,
// or the backlog is at its limit, all in one atomic step: a job accepted
// is never dropped for lack of room, and two submissions with one key
// never both queue. The backlog is what the stream holds (waiting and
// running jobs; finished ones are deleted) plus the retry set.
//
//	KEYS: stream, retry set, job hash, queued index, then the optional ones ARGV[11] names
//	ARGV: max backlog, TTL ms, id, type, queue, max_attempts, now (Unix s), payload, now (Unix ms), index cap,
//	      optional keys: "" none, "i" idempotency key, "s" queue set, "is" both in that order
//	returns {0} queued, {1, id} exists, {2, backlog} full
//
// On a Redis Cluster the queue set, which is in no queue's slot, is not
// passed: the Queue adds the name to it on its own.
var enqueueScript = redis.NewScript(`
local idem, queues = nil, nil
local k = 5
if string.find(ARGV[11], 'i', 1, true) then idem = KEYS[k]; k = k + 1 end
if string.find(ARGV[11], 's', 1, true) then queues = KEYS[k] end
if idem then
  local id = redis.call('GET', idem)
  if id then return {1, id} end
end
local backlog = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if backlog >= tonumber(ARGV[1]) then return {2, backlog} end
if redis.call('EXISTS', KEYS[3]) == 1 then
  if idem then redis.call('SET', idem, ARGV[3], 'PX', ARGV[2], 'NX') end
  return {1, ARGV[3]}
end
redis.call('HSET', KEYS[3], 'id', ARGV[3], 'type', ARGV[4], 'queue', ARGV[5], 'status', 'queued',
  'attempts', 0, 'max_attempts', ARGV[6], 'created_at', ARGV[7], 'updated_at', ARGV[7], 'payload', ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('XADD', KEYS[1], '*', 'id', ARGV[3], 'type', ARGV[4], 'payload', ARGV[8],
  'attempt', 1, 'max_attempts', ARGV[6], 'enqueued_at', ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[3])
if redis.call('ZCARD', KEYS[4]) > tonumber(ARGV[10]) then
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[10]) - 1)
end
if queues then redis.call('SADD', queues, ARGV[5]) end
if idem then redis.call('SET', idem, ARGV[3], 'PX', ARGV[2], 'NX') end
return {0}
`)

// promoteScript moves the retries that are due from the retry set into the
// stream, atomically, so two workers promoting at once never add a job
// twice. A member is a JSON array of the entry's field/value pairs, all
// strings; one that does not decode is dead-lettered with the raw member.
// The stream is not trimmed: a retry is a job already accepted.
//
//	KEYS: retry set, stream, dead-letter stream
//	ARGV: now (Unix ms), dead MAXLEN, batch limit
//	returns {moved, score of the next retry or ""}
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(due) do
  local ok, fields = pcall(cjson.decode, m)
  if ok and type(fields) == 'table' and #fields > 0 and #fields % 2 == 0 then
    redis.call('XADD', KEYS[2], '*', unpack(fields))
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'member', m,
      'error', 'retry set member is not a JSON array of field/value pairs')
  end
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or ''}
`)

// leaseScript renews or gives back this consumer's pending entries. For
// each id still owned by the consumer it resets the idle time to ARGV[3]
// milliseconds (0 renews the lease; a huge idle hands the entry to the next
// XAUTOCLAIM at once) and adds ARGV[4] to the delivery count (0, or -1 for an
// entry given back unstarted). The owner check keeps a worker from taking
// back an entry another worker already claimed. An id no longer pending
// (its outcome was written and acknowledged meanwhile) is skipped.
//
//	KEYS: stream
//	ARGV: group, consumer, idle ms, delivery count delta, id...
//	returns the ids another consumer owns now
var leaseScript = redis.NewScript(`
local lost = {}
for i = 5, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  local e = p[1]
  if e and e[2] == ARGV[2] then
    local n = tonumber(e[4]) + tonumber(ARGV[4])
    if n < 0 then n = 0 end
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'RETRYCOUNT', n, 'JUSTID')
  elseif e then
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
`)

// deadScript writes a dead letter and records its stream id in the job's
// hash (field dead_id), so the letter can be retried or deleted by job id
// without scanning the dead-letter stream. It runs inside the committer's
// MULTI/EXEC.
//
//	KEYS: dead-letter stream, job hash (optional)
//	ARGV: MAXLEN, field, value, ...
var deadScript = redis.NewScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
if KEYS[2] then redis.call('HSET', KEYS[2], 'dead_id', id) end
return id
`)
