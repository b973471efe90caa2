// Package heartbeat writes a worker's heartbeat to Redis and reads it back.
//
// Every interval, at once on a lifecycle change (Trigger), and at most once
// per MinGap (1s) more on busy/idle flips (TriggerSoon), a Beater writes the
// worker's Status in one MULTI/EXEC round trip (on a Redis Cluster, one
// pipeline whose hash, TTL and DEL are one script; see Write):
//
//	DEL    worker:heartbeat:<id>
//	HSET   worker:heartbeat:<id> worker_id <id> state IDLE timestamp 1688851200.123 ...
//	EXPIRE worker:heartbeat:<id> <ttl>
//	ZADD   worker:index <unix seconds> <id>
//	XADD   worker:status MAXLEN ~ <n> * worker_id <id> state IDLE ...
//
// The hash is the worker's latest status and expires unless renewed, the
// sorted set lists the fleet without SCAN, and the stream keeps a bounded
// time series of every beat. With Options.StateIndex a beat also keeps the
// derived keys StatesKey and DeadlineKey, with which a reader counts and
// pages a large fleet without reading every hash. Write is the Beater's
// writer, for tools that write beats for many workers. Stop appends a final STOPPED entry and removes
// the hash and the index entry. The keys and fields are a contract with
// workers in other languages, written down in docs/wire-format.md; Decode
// reads an entry back and says which field is wrong when one is.
//
// When Redis is down or slow the worker keeps running: the Beater retries
// with exponential backoff and jitter capped at the interval, logs one
// warning per outage and one line when Redis answers again, and counts the
// failed attempts (Failures) for the worker_heartbeat_failures_total metric.
// Check tells /health whether the heartbeat is current.
//
// Each beat runs under a timeout of min(Interval, 5s). Give the Beater a
// client with redis.Options.ContextTimeoutEnabled set, so that the timeout
// bounds socket I/O as well as the client's own retries (MaxRetries,
// DialerRetries), which all happen inside one beat.
package heartbeat
