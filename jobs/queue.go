package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/clock"
	"github.com/botfleet/botfleet/internal/wire"
)

// Defaults of QueueOptions and ConsumerOptions.
const (
	DefaultQueue       = "default"
	DefaultMaxAttempts = 3
	DefaultResultTTL   = 24 * time.Hour
	// DefaultMaxBacklog is the default QueueOptions.MaxBacklog: at 100 jobs
	// a second with no worker taking them, about 17 minutes of intake.
	DefaultMaxBacklog = 100000
	DefaultDeadMaxLen = 10000
	// DefaultIndexMaxLen is the default cap of each index of jobs by
	// status (QueueOptions.IndexMaxLen, ConsumerOptions.IndexMaxLen).
	DefaultIndexMaxLen = 100000
)

// Group is the consumer group every worker of a queue reads in.
const Group = "workers"

// ErrNotFound is returned by Get for a job id Redis does not know: never
// enqueued, or its hash expired.
var ErrNotFound = errors.New("jobs: job not found")

// ErrBacklogFull is returned (wrapped) by Enqueue and EnqueueWith when the
// queue already holds QueueOptions.MaxBacklog jobs waiting, running or
// waiting for a retry: the job is not queued, and nothing is written. A
// producer tries again later (the bot answers 429).
var ErrBacklogFull = errors.New("jobs: backlog full")

// keys are a queue's Redis keys. On one server (or a primary) they are
// the wire format's names; on a Redis Cluster every key of the queue,
// its job hashes and their histories included, carries the hash tag
// {<queue>}, so that the scripts and transactions that span them run in
// one slot (docs/wire-format.md, "Redis Cluster").
type keys struct {
	stream  string // jobs:<queue>, or jobs:{<queue>}
	dead    string // jobs:<queue>:dead
	retry   string // jobs:<queue>:retry
	paused  string // jobs:<queue>:paused
	job     string // the prefix of job hashes: job:, or job:{<queue>}:
	cluster bool
}

func keysFor(queue string, cluster bool) keys {
	s, j := "jobs:"+queue, "job:"
	if cluster {
		s, j = "jobs:{"+queue+"}", "job:{"+queue+"}:"
	}
	return keys{stream: s, dead: s + ":dead", retry: s + ":retry", paused: s + ":paused", job: j, cluster: cluster}
}

// index is the key of the queue's index of the jobs in status: a sorted
// set of job ids scored by the Unix milliseconds of their last change.
func (k keys) index(status string) string { return k.stream + ":index:" + status }

// QueuesKey is the set of the names of the queues producers have used.
const QueuesKey = "jobs:queues"

// idempotencyKey is the key that maps an idempotency key to its job's id.
func (k keys) idempotencyKey(key string) string { return k.stream + ":idempotency:" + key }

// jobKey is the key of a job's hash.
func (k keys) jobKey(id string) string { return k.job + id }

// attemptsKey is the key of a job's attempt history: a capped list of
// JSON objects, oldest first.
func (k keys) attemptsKey(id string) string { return k.job + id + ":attempts" }

// QueueOptions configure a Queue. The zero value of every field is its
// default; so is a negative one.
type QueueOptions struct {
	// MaxAttempts is how often a job runs before it is dead-lettered.
	// Default 3.
	MaxAttempts int
	// ResultTTL is how long a job's hash lives after its last change, and
	// how long an idempotency key is remembered. Default 24h.
	ResultTTL time.Duration
	// MaxBacklog is how many jobs the queue holds at most: waiting,
	// running, or waiting for a retry (the stream's length plus the retry
	// set's). Enqueue checks it before accepting a job, atomically with
	// adding it, and returns ErrBacklogFull beyond it. Waiting jobs are
	// never trimmed; finished ones leave the stream. Default 100000
	// (DefaultMaxBacklog).
	MaxBacklog int64
	// IndexMaxLen caps each of the queue's indexes of jobs by status (the
	// listings of List): beyond it the oldest entries are dropped, as are
	// those older than ResultTTL. Default 100000 (DefaultIndexMaxLen).
	IndexMaxLen int64
	// Replicas makes Enqueue wait for replicas to have each job before
	// it reports it queued (Redis's WAIT). Default: none.
	Replicas Replicas
	// Clock is the time source of timestamps; nil means the wall clock.
	Clock Clock
}

func (o QueueOptions) withDefaults() QueueOptions {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.ResultTTL <= 0 {
		o.ResultTTL = DefaultResultTTL
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.IndexMaxLen <= 0 {
		o.IndexMaxLen = DefaultIndexMaxLen
	}
	o.Clock = clock.Or(o.Clock)
	return o
}

// Queue is the producer side of a queue: the bot enqueues jobs and asks
// what became of them. It is safe for concurrent use.
type Queue struct {
	rdb  redis.UniversalClient
	name string
	keys keys
	o    QueueOptions
	// registered is when register last added the name (Unix ns).
	registered atomic.Int64
}

// NewQueue returns the queue name ("" means DefaultQueue) in rdb. On a
// Redis Cluster (rdb a *redis.ClusterClient) the queue's keys, its job
// hashes included, carry the hash tag {name}, so they share one slot
// (docs/wire-format.md, "Redis Cluster").
func NewQueue(rdb redis.UniversalClient, name string, o QueueOptions) *Queue {
	if name == "" {
		name = DefaultQueue
	}
	return &Queue{rdb: rdb, name: name, keys: keysFor(name, wire.IsCluster(rdb)), o: o.withDefaults()}
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// EnqueueOptions are the options of one EnqueueWith. The zero value
// enqueues as Enqueue does.
type EnqueueOptions struct {
	// ID is the job's id, chosen by the caller so that it knows the id
	// before the call: if the answer is lost (a timeout), it can look the
	// job up. It must be 1 to 200 letters, digits, '.', '_' or '-',
	// starting with a letter or digit; NewID makes one. If a job with this
	// id exists, nothing is queued and EnqueueWith returns that job.
	// Empty means NewID(typ).
	ID string
	// IdempotencyKey makes a retried submission return the first one's
	// job instead of queueing a second: the first call with a key records
	// key -> job id for ResultTTL, and a later call with the same key (in
	// the same queue) returns that job, whatever its type and payload.
	// At most 255 bytes of printable ASCII. Empty means none.
	IdempotencyKey string
}

// Limits of EnqueueOptions.
const (
	maxIDLen             = 200
	maxIdempotencyKeyLen = 255
)

// Enqueue adds a job of type typ; payload is marshalled with encoding/json
// (a json.RawMessage is used as it is). It is EnqueueWith with no options.
func (q *Queue) Enqueue(ctx context.Context, typ string, payload any) (Info, error) {
	info, _, err := q.EnqueueWith(ctx, typ, payload, EnqueueOptions{})
	return info, err
}

// EnqueueWith adds a job of type typ, as Enqueue does, and reports whether
// it existed already: a job with o.ID, or the job o.IdempotencyKey was
// first given to. Then nothing is queued, and the Info is that job's. It
// costs one round trip (two when the job existed): one Lua script checks
// the idempotency key, the backlog limit (ErrBacklogFull) and the id, then
// writes the job's hash (status queued), its stream entry and the key, so a
// worker never sees a job without its hash.
//
// An error other than a refusal (ErrBacklogFull, a bad type, payload or
// option) leaves it unknown whether the job was queued: a script sent
// before a timeout may still run. The caller that chose o.ID can then look
// the job up with Get, or submit again with the same ID or key.
func (q *Queue) EnqueueWith(ctx context.Context, typ string, payload any, o EnqueueOptions) (Info, bool, error) {
	if err := checkType(typ); err != nil {
		return Info{}, false, fmt.Errorf("jobs: enqueue: %w", err)
	}
	data, err := check(payload, o)
	if err != nil {
		return Info{}, false, fmt.Errorf("jobs: enqueue %s: %w", typ, err)
	}
	// As the hash keeps it, so that Get answers the same.
	now := time.UnixMilli(q.o.Clock.Now().UnixMilli()).UTC()
	info := Info{
		ID: cmp.Or(o.ID, NewID(typ)), Type: typ, Queue: q.name, Status: StatusQueued,
		MaxAttempts: q.o.MaxAttempts, CreatedAt: now, UpdatedAt: now,
	}
	if err := q.register(ctx); err != nil {
		return Info{}, false, fmt.Errorf("jobs: enqueue %s %s: not queued: add %s to %s: %w", typ, info.ID, q.name, QueuesKey, err)
	}
	keys, args := q.enqueueArgs(info, data, o.IdempotencyKey)
	res, err := q.o.Replicas.run(ctx, q.rdb, enqueueScript, keys, args...).Slice()
	if err != nil {
		return Info{}, false, fmt.Errorf("jobs: enqueue %s %s: %w", typ, info.ID, err)
	}
	outcome, _ := res[0].(int64)
	switch outcome {
	case enqueueQueued:
		return info, false, nil
	case enqueueFull:
		n, _ := res[1].(int64)
		return Info{}, false, fmt.Errorf("jobs: enqueue %s: %w: %d jobs waiting or running, limit %d", typ, ErrBacklogFull, n, q.o.MaxBacklog)
	case enqueueExists:
		id, _ := res[1].(string)
		existing, err := q.Get(ctx, id)
		if errors.Is(err, ErrNotFound) { // expired between the script and now
			return Info{ID: id, Queue: q.name}, true, nil
		}
		if err != nil {
			return Info{ID: id, Queue: q.name}, true, fmt.Errorf("jobs: enqueue %s: the job exists: %w", typ, err)
		}
		return existing, true, nil
	}
	return Info{}, false, fmt.Errorf("jobs: enqueue %s: unexpected reply %v", typ, res)
}

// check validates the options and the payload and returns the payload's
// JSON.
func check(payload any, o EnqueueOptions) ([]byte, error) {
	if o.ID != "" {
		if err := checkID(o.ID); err != nil {
			return nil, err
		}
	}
	if err := checkIdempotencyKey(o.IdempotencyKey); err != nil {
		return nil, err
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if len(data) > MaxPayloadSize {
		return nil, fmt.Errorf("payload of %d bytes: more than %d", len(data), MaxPayloadSize)
	}
	return data, nil
}

// enqueueArgs returns the keys and arguments of enqueueScript for the job
// info describes, with idempotency key idem ("" for none).
func (q *Queue) enqueueArgs(info Info, payload []byte, idem string) ([]string, []any) {
	keys := []string{q.keys.stream, q.keys.retry, q.keys.jobKey(info.ID), q.keys.index(StatusQueued)}
	optional := ""
	if idem != "" {
		keys = append(keys, q.keys.idempotencyKey(idem))
		optional += "i"
	}
	if !q.keys.cluster {
		keys = append(keys, QueuesKey)
		optional += "s"
	}
	return keys, []any{
		q.o.MaxBacklog, q.o.ResultTTL.Milliseconds(),
		info.ID, info.Type, info.Queue, info.MaxAttempts, formatUnix(info.CreatedAt), payload,
		info.CreatedAt.UnixMilli(), q.o.IndexMaxLen, optional,
	}
}

// registerEvery is how often a Queue on a Redis Cluster adds its name to
// QueuesKey again, in case Redis lost it.
const registerEvery = time.Minute

// register adds the queue's name to QueuesKey on a Redis Cluster, where
// enqueueScript cannot (the set is in another slot): before the first
// enqueue, then at most every registerEvery. Elsewhere the script does.
func (q *Queue) register(ctx context.Context) error {
	if !q.keys.cluster {
		return nil
	}
	now := q.o.Clock.Now().UnixNano()
	if last := q.registered.Load(); last != 0 && time.Duration(now-last) < registerEvery {
		return nil
	}
	if err := q.rdb.SAdd(ctx, QueuesKey, q.name).Err(); err != nil {
		return err
	}
	q.registered.Store(now)
	return nil
}

// Get returns what the job's hash says; ErrNotFound if there is none.
func (q *Queue) Get(ctx context.Context, id string) (Info, error) {
	fields, err := q.rdb.HGetAll(ctx, q.keys.jobKey(id)).Result()
	if err != nil {
		return Info{}, fmt.Errorf("jobs: get %s: %w", id, err)
	}
	if len(fields) == 0 {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return infoFrom(id, fields), nil
}

// infoFrom reads a job hash. It is lenient: a field it cannot read is left
// zero, as the hash is the queue's own writing.
func infoFrom(id string, f map[string]string) Info {
	info := Info{
		ID: id, Type: f[fieldType], Queue: f[fieldQueue], Status: f[fieldStatus],
		Error: f[fieldError], Worker: f[fieldWorker],
	}
	info.Attempts, _ = strconv.Atoi(f[fieldAttempts])
	info.MaxAttempts, _ = strconv.Atoi(f[fieldMaxAttempts])
	if r, ok := f[fieldResult]; ok {
		info.Result = json.RawMessage(r)
	}
	info.CreatedAt, _ = parseUnix(f[fieldCreatedAt])
	info.UpdatedAt, _ = parseUnix(f[fieldUpdatedAt])
	return info
}

// Stats describe a queue at one moment.
type Stats struct {
	// Length counts the jobs in the stream: waiting or in progress
	// (finished jobs leave it).
	Length int64 `json:"length"`
	// Pending counts the jobs delivered to a worker and not yet finished.
	Pending int64 `json:"pending"`
	// Retrying counts the jobs waiting for their backoff before a retry.
	Retrying int64 `json:"retrying"`
	// DeadLetters counts the entries of the dead-letter stream.
	DeadLetters int64 `json:"dead_letters"`
	// Backlog counts what MaxBacklog limits: Length plus Retrying.
	Backlog int64 `json:"backlog"`
	// MaxBacklog is the queue's limit (QueueOptions.MaxBacklog): Enqueue
	// refuses jobs while Backlog is at it.
	MaxBacklog int64 `json:"max_backlog"`
}

// Stats reads the queue's counts in one round trip.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var (
		length, retrying, dead *redis.IntCmd
		pending                *redis.XPendingCmd
	)
	_, _ = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		length = p.XLen(ctx, q.keys.stream)
		pending = p.XPending(ctx, q.keys.stream, Group)
		retrying = p.ZCard(ctx, q.keys.retry)
		dead = p.XLen(ctx, q.keys.dead)
		return nil
	})
	var st Stats
	var err error
	for _, c := range []struct {
		dst *int64
		cmd *redis.IntCmd
	}{{&st.Length, length}, {&st.Retrying, retrying}, {&st.DeadLetters, dead}} {
		*c.dst = c.cmd.Val()
		err = cmp.Or(err, c.cmd.Err())
	}
	switch p, perr := pending.Result(); {
	case perr == nil:
		st.Pending = p.Count
	case !isNoGroup(perr): // no group yet: no worker ever read, nothing pending
		err = cmp.Or(err, perr)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("jobs: stats of %s: %w", q.name, err)
	}
	st.Backlog, st.MaxBacklog = st.Length+st.Retrying, q.o.MaxBacklog
	return st, nil
}
