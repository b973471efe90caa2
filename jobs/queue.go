package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of QueueOptions and ConsumerOptions.
const (
	DefaultQueue        = "default"
	DefaultMaxAttempts  = 3
	DefaultResultTTL    = 24 * time.Hour
	DefaultStreamMaxLen = 100000
	DefaultDeadMaxLen   = 10000
)

// Group is the consumer group every worker of a queue reads in.
const Group = "workers"

// ErrNotFound is returned by Get for a job id Redis does not know: never
// enqueued, or its hash expired.
var ErrNotFound = errors.New("jobs: job not found")

// keys are a queue's Redis keys.
type keys struct {
	stream string // jobs:<queue>
	dead   string // jobs:<queue>:dead
	retry  string // jobs:<queue>:retry
}

func keysFor(queue string) keys {
	s := "jobs:" + queue
	return keys{stream: s, dead: s + ":dead", retry: s + ":retry"}
}

// jobKey is the key of a job's hash.
func jobKey(id string) string { return "job:" + id }

// QueueOptions configure a Queue. The zero value of every field is its
// default; so is a negative one.
type QueueOptions struct {
	// MaxAttempts is how often a job runs before it is dead-lettered.
	// Default 3.
	MaxAttempts int
	// ResultTTL is how long a job's hash lives after its last change.
	// Default 24h.
	ResultTTL time.Duration
	// StreamMaxLen caps the stream, approximately (MAXLEN ~). Finished jobs
	// leave the stream, so this bounds the backlog; beyond it the oldest
	// waiting jobs are dropped. Default 100000.
	StreamMaxLen int64
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
	if o.StreamMaxLen <= 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o
}

// Queue is the producer side of a queue: the bot enqueues jobs and asks
// what became of them. It is safe for concurrent use.
type Queue struct {
	rdb  redis.UniversalClient
	name string
	keys keys
	o    QueueOptions
}

// NewQueue returns the queue name ("" means DefaultQueue) in rdb.
func NewQueue(rdb redis.UniversalClient, name string, o QueueOptions) *Queue {
	if name == "" {
		name = DefaultQueue
	}
	return &Queue{rdb: rdb, name: name, keys: keysFor(name), o: o.withDefaults()}
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// Enqueue adds a job of type typ; payload is marshalled with encoding/json
// (a json.RawMessage is used as it is). It costs one round trip: the job's
// hash (status queued) and its stream entry are written in one MULTI/EXEC,
// so a worker never sees a job without its hash.
func (q *Queue) Enqueue(ctx context.Context, typ string, payload any) (Info, error) {
	if err := checkType(typ); err != nil {
		return Info{}, fmt.Errorf("jobs: enqueue: %w", err)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return Info{}, fmt.Errorf("jobs: enqueue %s: payload: %w", typ, err)
	}
	if len(data) > MaxPayloadSize {
		return Info{}, fmt.Errorf("jobs: enqueue %s: payload of %d bytes: more than %d", typ, len(data), MaxPayloadSize)
	}
	now := q.o.Clock.Now()
	info := Info{
		ID: newID(typ), Type: typ, Queue: q.name, Status: StatusQueued,
		MaxAttempts: q.o.MaxAttempts, CreatedAt: now, UpdatedAt: now,
	}
	_, err = q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		q.enqueue(ctx, p, info, data)
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("jobs: enqueue %s: %w", typ, err)
	}
	return info, nil
}

// enqueue queues the commands that add the job info describes.
func (q *Queue) enqueue(ctx context.Context, p redis.Pipeliner, info Info, payload []byte) {
	key, ts := jobKey(info.ID), formatUnix(info.CreatedAt)
	p.HSet(ctx, key,
		fieldID, info.ID, fieldType, info.Type, fieldQueue, info.Queue, fieldStatus, info.Status,
		fieldAttempts, 0, fieldMaxAttempts, info.MaxAttempts, fieldCreatedAt, ts, fieldUpdatedAt, ts)
	p.Expire(ctx, key, q.o.ResultTTL)
	p.XAdd(ctx, &redis.XAddArgs{
		Stream: q.keys.stream, MaxLen: q.o.StreamMaxLen, Approx: true,
		Values: []any{
			fieldID, info.ID, fieldType, info.Type, fieldPayload, payload,
			fieldAttempt, 1, fieldMaxAttempts, info.MaxAttempts, fieldEnqueuedAt, ts,
		},
	})
}

// Get returns what the job's hash says; ErrNotFound if there is none.
func (q *Queue) Get(ctx context.Context, id string) (Info, error) {
	fields, err := q.rdb.HGetAll(ctx, jobKey(id)).Result()
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
	return st, nil
}
