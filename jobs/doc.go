// Package jobs is the Redis job queue the bot and its workers share.
//
// The bot enqueues with a Queue; workers run jobs with a Consumer and the
// handlers of a Mux, registered by job type. A queue lives in these keys
// (the contract a worker in another language follows, written down in
// docs/wire-format.md):
//
//	jobs:<queue>         stream of jobs, read in consumer group "workers"
//	jobs:<queue>:retry   sorted set of failed jobs waiting for their backoff (score: due, Unix ms)
//	jobs:<queue>:dead    stream of jobs that failed for good, with their error
//	job:<id>             hash: status, attempts, result or error, worker, timestamps; expires
//
// A stream entry carries id, type, payload (JSON), attempt, max_attempts
// and enqueued_at (Unix seconds). Enqueue runs one Lua script that checks
// the backlog limit (MaxBacklog: waiting, running and retrying jobs; past
// it ErrBacklogFull, nothing written) and the idempotency key, then writes
// the entry, the job's hash (status queued) and the key, so a producer's
// answer is true: queued, refused, or (on a timeout) unknown with the id it
// chose to look up.
//
// A consumer reads entries in batches (XREADGROUP), runs them with at most
// Concurrency at once, and writes the bookkeeping of many jobs in one Lua
// script, atomically: status running, then the outcome. A success stores the result
// (status succeeded); a failure either schedules a retry in the retry set,
// Backoff doubling per attempt (status retrying), or, once max_attempts
// are used up, adds the job to the dead-letter stream (status failed).
// Either way the entry is then acknowledged and deleted from the stream,
// so the stream holds only waiting and running jobs. A Lua script moves due
// retries back into the stream atomically.
//
// Delivery is at least once. An entry is acknowledged only after its
// outcome is written; a worker that dies leaves its entries pending, and
// another claims them (XAUTOCLAIM) after VisibilityTimeout. A live worker
// renews its entries' idle time well before that, so a long job is not
// taken from it. A job delivered more often than max_attempts, because it
// kills every worker that runs it, is dead-lettered instead of run again;
// so is a malformed entry or one of a type no handler is registered for,
// at once, with an error that says why.
//
// A handler's panic fails its attempt and is logged with its stack; the
// worker carries on. Redis errors are logged once per outage and retried
// with backoff. Everything is bounded: the job stream by MaxBacklog,
// checked before a job is accepted (a waiting job is never trimmed), the
// dead-letter stream by MAXLEN ~, the hashes and idempotency keys by their
// TTL.
//
// The keys of a queue must live on one Redis server (or a primary with
// replicas): transactions and scripts span them, so Redis Cluster is not
// supported. Redis 7.0 or later, or miniredis, is required.
package jobs
