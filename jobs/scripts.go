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

// outcomeScript writes a batch of the committer's ops in one atomic step:
// for each op its job hash (and TTL), its move between the indexes, its
// attempt history, its retry or dead letter; then the indexes' trim, and
// one XACK and XDEL of the finished entries. A write Redis refuses for one
// op (a key of the wrong type, clobbered by hand) is reported and the
// others go on, as commands in a MULTI/EXEC do: the reply lists the
// errors.
//
//	KEYS: stream, retry set, dead-letter stream, the indexes of queued,
//	      running, retrying, succeeded and failed, then each op's job hash
//	      and attempt history (for an op without a job id, the stream twice,
//	      unused)
//	ARGV: group, result TTL ms, dead MAXLEN, index cutoff ms, index cap,
//	      op count, history cap, then per op:
//	      kind (r s t d), stream id, job id or "", index score ms,
//	      index to move to (1-5) or 0, history entry or "", HDEL error (1 or 0),
//	      retry score, retry member (both "" unless t),
//	      dead field count n, n dead letter fields,
//	      hash field count m, m hash fields
//	returns the error texts of refused writes
var outcomeScript = redis.NewScript(`
local errs = {}
local function try(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then errs[#errs + 1] = r.err end
  return r
end
local ttl, deadmax, histcap = ARGV[2], ARGV[3], tonumber(ARGV[7])
local acks, touched = {}, {}
local a = 8
for i = 1, tonumber(ARGV[6]) do
  local kind, sid, id, score, to, hist, hdel = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], tonumber(ARGV[a+4]), ARGV[a+5], ARGV[a+6]
  local rscore, rmember = ARGV[a+7], ARGV[a+8]
  local nd = tonumber(ARGV[a+9])
  local dstart = a + 10
  local nh = tonumber(ARGV[dstart + nd])
  local hstart = dstart + nd + 1
  a = hstart + nh
  local hash, history = KEYS[7 + 2*i], KEYS[8 + 2*i]
  if kind ~= 'r' then acks[#acks + 1] = sid end
  if kind == 't' then try('ZADD', KEYS[2], rscore, rmember) end
  local deadID = nil
  if kind == 'd' then
    deadID = try('XADD', KEYS[3], 'MAXLEN', '~', deadmax, '*', unpack(ARGV, dstart, dstart + nd - 1))
  end
  if id ~= '' then
    if nh > 0 then
      try('HSET', hash, unpack(ARGV, hstart, hstart + nh - 1))
      if type(deadID) == 'string' then try('HSET', hash, 'dead_id', deadID) end
      if hdel == '1' then try('HDEL', hash, 'error') end
      try('PEXPIRE', hash, ttl)
    end
    if to > 0 then
      try('ZADD', KEYS[3 + to], score, id)
      for s = 1, 3 do
        if s ~= to then try('ZREM', KEYS[3 + s], id) end
      end
      touched[to] = true
    end
    if hist ~= '' then
      try('RPUSH', history, hist)
      try('LTRIM', history, -histcap, -1)
      try('PEXPIRE', history, ttl)
    end
  end
end
for s in pairs(touched) do
  try('ZREMRANGEBYSCORE', KEYS[3 + s], '-inf', '(' .. ARGV[4])
  try('ZREMRANGEBYRANK', KEYS[3 + s], 0, -tonumber(ARGV[5]) - 1)
end
if #acks > 0 then
  try('XACK', KEYS[1], ARGV[1], unpack(acks))
  try('XDEL', KEYS[1], unpack(acks))
end
return errs
`)
