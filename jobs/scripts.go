package jobs

import "github.com/redis/go-redis/v9"

// promoteScript moves the retries that are due from the retry set into the
// stream, atomically, so two workers promoting at once never add a job
// twice. A member is a JSON array of the entry's field/value pairs, all
// strings; one that does not decode is dead-lettered with the raw member.
//
//	KEYS: retry set, stream, dead-letter stream
//	ARGV: now (Unix ms), stream MAXLEN, dead MAXLEN, batch limit
//	returns {moved, score of the next retry or ""}
var promoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])
for _, m in ipairs(due) do
  local ok, fields = pcall(cjson.decode, m)
  if ok and type(fields) == 'table' and #fields > 0 and #fields % 2 == 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'member', m,
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
// back an entry another worker already claimed.
//
//	KEYS: stream
//	ARGV: group, consumer, idle ms, delivery count delta, id...
//	returns the ids the consumer no longer owns
var leaseScript = redis.NewScript(`
local lost = {}
for i = 5, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  local e = p[1]
  if e and e[2] == ARGV[2] then
    local n = tonumber(e[4]) + tonumber(ARGV[4])
    if n < 0 then n = 0 end
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'RETRYCOUNT', n, 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
`)
