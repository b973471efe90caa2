package fleet

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/wire"
)

// Defaults of the Options.
const (
	DefaultBatchSize   = 500
	DefaultStaleFactor = heartbeat.StaleFactor
)

// ErrNotFound is returned by Get for a worker without a heartbeat hash:
// never registered, stopped, or expired.
var ErrNotFound = errors.New("fleet: worker not found")

// Options configure a Reader. The zero value of every field is its default.
type Options struct {
	// BatchSize is how many HGETALLs go in one pipeline, that is one round
	// trip. Default 500.
	BatchSize int
	// StaleFactor: a worker is alive while its last beat is at most
	// StaleFactor x its own interval old, and stale after that. Default 1.5,
	// the rule of docs/wire-format.md.
	StaleFactor float64
	// Now returns the current time. Nil, the default, means Redis's TIME,
	// read once per List or Get, so that a skewed clock on the reader's
	// host cannot make a dead worker look alive. Tests set it to move time
	// without waiting.
	Now func() time.Time
	// MaxStreams is how many GET /api/fleet/events streams NewHandler's
	// handler serves at once (FLEET_MAX_STREAMS); a client past it gets
	// 503 and the dashboard falls back to polling. Default
	// DefaultMaxStreams.
	MaxStreams int
}

// DefaultMaxStreams is Options.MaxStreams's default.
const DefaultMaxStreams = 32

func (o Options) withDefaults() Options {
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.StaleFactor <= 0 {
		o.StaleFactor = DefaultStaleFactor
	}
	return o
}

// A Reader reads the fleet from Redis. It is safe for concurrent use.
//
// It reads every hash at every List, but keeps the last decoded heartbeat of
// each listed worker (some 500 bytes a worker), so that it decodes only the
// hashes that changed, and remembers when it first read each one, to age a
// beat stamped in the future by Redis's clock.
type Reader struct {
	rdb  redis.UniversalClient
	o    Options
	seed maphash.Seed

	streams atomic.Int64 // event streams being served

	mu    sync.Mutex
	cache map[string]*entry // by worker id
}

// NewReader returns a Reader of the fleet in rdb, which must reach the
// single Redis server (or primary) the workers beat to.
func NewReader(rdb redis.UniversalClient, o Options) *Reader {
	return &Reader{rdb: rdb, o: o.withDefaults(), seed: maphash.MakeSeed(), cache: map[string]*entry{}}
}

// listConcurrency is how many batches List has in flight at once, so that
// Redis answers one while the reader decodes another.
const listConcurrency = 4

// List returns every registered worker, sorted by id, in 1 + ceil(n /
// BatchSize) round trips (one more when some expired): the index and the
// time, then the hashes in pipelined batches, a few at once. Ids whose hash
// is gone are removed from the index and not listed; a malformed hash is
// listed as invalid.
func (r *Reader) List(ctx context.Context) (Fleet, error) {
	now, ids, err := r.index(ctx)
	if err != nil {
		return Fleet{}, err
	}
	slices.Sort(ids)
	all, err := r.readAll(ctx, ids, now)
	if err != nil {
		return Fleet{}, err
	}
	cache := make(map[string]*entry, len(ids))
	for i, e := range all.entries {
		if e != nil {
			cache[all.workers[i].WorkerID] = e
		}
	}
	r.mu.Lock()
	r.cache = cache // forgets the workers that left
	r.mu.Unlock()
	r.settle(ctx, &all)
	return Fleet{GeneratedAt: now, Summary: summarize(all.workers), Workers: all.workers}, nil
}

// readAll reads and judges the workers ids at now, in pipelined batches, a
// few in flight at once, keeping their order. The ids whose hash is gone
// are in gone, not in workers.
func (r *Reader) readAll(ctx context.Context, ids []string, now time.Time) (batch, error) {
	size := r.o.BatchSize
	// One slice for all the batches, each writing its own part: no copy
	// of the workers afterwards.
	all := batch{workers: make([]Worker, len(ids)), entries: make([]*entry, len(ids))}
	gone := make([][]string, (len(ids)+size-1)/size)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, listConcurrency)
		failOnce sync.Once
		failed   error
	)
	for i := range gone {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			lo, hi := i*size, min((i+1)*size, len(ids))
			b := batch{workers: all.workers[lo:hi], entries: all.entries[lo:hi]}
			if err := b.read(bctx, r, ids[lo:hi], now); err != nil {
				// The first error is the cause; the batches still to come
				// would fail the same way.
				failOnce.Do(func() { failed = err; cancel() })
			}
			gone[i] = b.gone
		})
	}
	wg.Wait()
	if failed != nil {
		return batch{}, failed
	}
	n := 0
	for i := range all.workers {
		if all.workers[i].WorkerID == "" {
			continue // gone
		}
		all.workers[n], all.entries[n] = all.workers[i], all.entries[i]
		n++
	}
	clear(all.workers[n:])
	all.workers, all.entries = all.workers[:n], all.entries[:n]
	for _, g := range gone {
		all.gone = append(all.gone, g...)
	}
	return all, nil
}

// batch is what the Reader read of some hashes.
type batch struct {
	workers []Worker
	entries []*entry // of workers; nil for a key Redis could not read as a hash
	gone    []string // ids without a hash (or without any field of the wire format)
}

// read reads the hashes of ids into b.workers and b.entries, which have
// room for them; a gone worker's place is left zero and its id added to
// b.gone.
func (b *batch) read(ctx context.Context, r *Reader, ids []string, now time.Time) error {
	cmds, err := r.hashes(ctx, ids)
	if err != nil {
		return err
	}
	for i, id := range ids {
		vals, rerr := cmds[i].Result()
		switch {
		case rerr != nil:
			b.workers[i] = invalidWorker(id, fmt.Sprintf("%s%s: %v", heartbeat.KeyPrefix, id, rerr))
		case allNil(vals):
			b.gone = append(b.gone, id)
		default:
			e := r.decode(id, vals, now)
			b.entries[i] = e
			b.workers[i] = r.judge(id, e, now)
		}
	}
	return nil
}

func allNil(vals []any) bool {
	for _, v := range vals {
		if v != nil {
			return false
		}
	}
	return true
}

// settle prunes the gone workers of b from the index and the derived keys.
// An id whose hash exists after all (it holds none of the wire format's
// fields, or a beat came in between) is listed as invalid, in order.
func (r *Reader) settle(ctx context.Context, b *batch) {
	// Pruning is housekeeping: if it fails, the next read tries again.
	exists, _ := r.prune(ctx, b.gone)
	if len(exists) == 0 {
		return
	}
	_, err := heartbeat.Decode(map[string]string{})
	for _, id := range exists {
		b.workers = append(b.workers, invalidWorker(id, err.Error()))
	}
	b.entries = nil // no longer in the workers' order
	slices.SortFunc(b.workers, func(a, b Worker) int { return strings.Compare(a.WorkerID, b.WorkerID) })
}

// Get returns one worker, in one round trip, or ErrNotFound.
func (r *Reader) Get(ctx context.Context, workerID string) (Worker, error) {
	key := heartbeat.KeyPrefix + workerID
	pipe := r.rdb.Pipeline()
	timeCmd := r.queueTime(ctx, pipe)
	hash := pipe.HMGet(ctx, key, hashFields...)
	exists := pipe.Exists(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && !wire.IsReplyError(hash.Err()) {
		return Worker{}, fmt.Errorf("fleet: read worker %q: %w", workerID, err)
	}
	now, err := r.now(timeCmd)
	if err != nil {
		return Worker{}, err
	}
	vals, rerr := hash.Result()
	switch {
	case rerr != nil:
		return invalidWorker(workerID, fmt.Sprintf("%s: %v", key, rerr)), nil
	case exists.Val() == 0:
		return Worker{}, fmt.Errorf("%w: %q", ErrNotFound, workerID)
	}
	e := r.decode(workerID, vals, now)
	r.mu.Lock()
	r.cache[workerID] = e
	r.mu.Unlock()
	return r.judge(workerID, e, now), nil
}

// index reads the current time and all the ids of the index in one round
// trip.
func (r *Reader) index(ctx context.Context) (time.Time, []string, error) {
	pipe := r.rdb.Pipeline()
	timeCmd := r.queueTime(ctx, pipe)
	ids := pipe.ZRange(ctx, heartbeat.IndexKey, 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, nil, fmt.Errorf("fleet: read %s: %w", heartbeat.IndexKey, err)
	}
	now, err := r.now(timeCmd)
	return now, ids.Val(), err
}

// queueTime adds TIME to pipe unless Options.Now replaces it.
func (r *Reader) queueTime(ctx context.Context, pipe redis.Pipeliner) *redis.TimeCmd {
	if r.o.Now != nil {
		return nil
	}
	return pipe.Time(ctx)
}

func (r *Reader) now(cmd *redis.TimeCmd) (time.Time, error) {
	if cmd == nil {
		return r.o.Now(), nil
	}
	t, err := cmd.Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("fleet: Redis TIME: %w", err)
	}
	return t.UTC(), nil
}

// hashFields are the fields the Reader reads of a hash: the wire format's,
// in its order. HMGET of these, rather than HGETALL, spares Redis and the
// reader the field names and fields no reader knows.
var hashFields = heartbeat.FieldNames()

// hmgetArgs is HMGET <key> <fields...> with the key's place empty: the
// field names boxed once, not at every command.
var hmgetArgs = func() []any {
	args := []any{"hmget", ""}
	for _, f := range hashFields {
		args = append(args, f)
	}
	return args
}()

// hashes reads the hashes of ids in one pipeline. A command that Redis
// answered with an error (a key of the wrong type) is left for the caller
// to report; a failed round trip fails the whole batch.
func (r *Reader) hashes(ctx context.Context, ids []string) ([]*redis.SliceCmd, error) {
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		args := slices.Clone(hmgetArgs)
		args[1] = heartbeat.KeyPrefix + id
		cmds[i] = redis.NewSliceCmd(ctx, args...)
		_ = pipe.Process(ctx, cmds[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		for _, c := range cmds {
			if err := c.Err(); err != nil && !wire.IsReplyError(err) {
				return nil, fmt.Errorf("fleet: read heartbeats: %w", err)
			}
		}
	}
	return cmds, nil
}

// pruneScript removes an id from the index, and from the derived keys,
// only while its hash is missing, atomically, so a beat racing the removal
// wins: it is the WATCH / EXISTS / MULTI ZREM EXEC of docs/wire-format.md
// in one command, which pipelines. KEYS: the hash, the index, the deadline
// set, the states set; ARGV: the id, then its members of the states set.
// It answers -1 when the hash exists.
var pruneScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	redis.call('ZREM', KEYS[3], ARGV[1])
	redis.call('ZREM', KEYS[4], unpack(ARGV, 2))
	return redis.call('ZREM', KEYS[2], ARGV[1])
end
return -1`)

// pruneIndexScript is pruneScript for a Redis Cluster, where the hash
// lives in another slot than the index and the derived keys (which share
// the index's slot by their hash tag): it removes an id only while its
// index score is the one read when its hash was found missing, so a beat
// that came since (and moved the score) wins. KEYS: the index, the
// deadline set, the states set; ARGV: the id, the score read, then its
// members of the states set. It answers -1 when the score moved.
var pruneIndexScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) ~= tonumber(ARGV[2]) then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], unpack(ARGV, 3))
return redis.call('ZREM', KEYS[1], ARGV[1])`)

// prune removes the ids whose hash is gone from the index, in pipelined
// batches, and returns those whose hash exists after all.
func (r *Reader) prune(ctx context.Context, ids []string) (exists []string, err error) {
	if wire.IsCluster(r.rdb) {
		return r.pruneCluster(ctx, ids)
	}
	for start := 0; start < len(ids); start += r.o.BatchSize {
		pipe := r.rdb.Pipeline()
		batch := ids[start:min(start+r.o.BatchSize, len(ids))]
		cmds := make([]*redis.Cmd, len(batch))
		for i, id := range batch {
			// EVAL, not EVALSHA: a NOSCRIPT inside a pipeline cannot fall back.
			args := make([]any, 0, 1+len(States))
			args = append(args, id)
			for _, st := range States {
				args = append(args, heartbeat.StateMember(st, id))
			}
			cmds[i] = pruneScript.Eval(ctx, pipe, []string{heartbeat.KeyPrefix + id, heartbeat.IndexKey, heartbeat.DeadlineKey, heartbeat.StatesKey}, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return exists, fmt.Errorf("fleet: prune %s: %w", heartbeat.IndexKey, err)
		}
		for i, cmd := range cmds {
			if n, _ := cmd.Int64(); n == -1 {
				exists = append(exists, batch[i])
			}
		}
	}
	return exists, nil
}

// pruneCluster is prune on a Redis Cluster, two round trips a batch: the
// index score and EXISTS of each id, then pruneIndexScript for those whose
// hash is missing. A beat whose index write lands before its hash write
// and between the two may be dropped from the index: its next beat puts
// it back.
func (r *Reader) pruneCluster(ctx context.Context, ids []string) (exists []string, err error) {
	for start := 0; start < len(ids); start += r.o.BatchSize {
		batch := ids[start:min(start+r.o.BatchSize, len(ids))]
		scores := make([]*redis.FloatCmd, len(batch))
		found := make([]*redis.IntCmd, len(batch))
		_, _ = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				scores[i] = p.ZScore(ctx, heartbeat.IndexKey, id)
				found[i] = p.Exists(ctx, heartbeat.KeyPrefix+id)
			}
			return nil
		})
		for _, f := range found {
			if err := f.Err(); err != nil {
				return exists, fmt.Errorf("fleet: prune %s: %w", heartbeat.IndexKey, err)
			}
		}
		pipe := r.rdb.Pipeline()
		var cmds []*redis.Cmd
		var gone []string
		for i, id := range batch {
			if found[i].Val() != 0 {
				exists = append(exists, id)
				continue
			}
			score, serr := scores[i].Result()
			if serr != nil {
				score = -1 // not indexed: only the derived keys are cleaned
			}
			args := make([]any, 0, 2+len(States))
			args = append(args, id, strconv.FormatFloat(score, 'g', -1, 64))
			for _, st := range States {
				args = append(args, heartbeat.StateMember(st, id))
			}
			// EVAL, not EVALSHA: a NOSCRIPT inside a pipeline cannot fall back.
			cmds = append(cmds, pruneIndexScript.Eval(ctx, pipe, []string{heartbeat.IndexKey, heartbeat.DeadlineKey, heartbeat.StatesKey}, args...))
			gone = append(gone, id)
		}
		if len(cmds) == 0 {
			continue
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return exists, fmt.Errorf("fleet: prune %s: %w", heartbeat.IndexKey, err)
		}
		for i, cmd := range cmds {
			if n, _ := cmd.Int64(); n == -1 {
				exists = append(exists, gone[i])
			}
		}
	}
	return exists, nil
}
