package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/wire"
)

// The derived keys: optional indexes a writer may keep beside the three
// keys of the wire format, so that a reader can count and page a large
// fleet without reading every hash (docs/wire-format.md, "Derived keys").
// A Beater keeps them with Options.StateIndex. They are derived: a writer
// that does not keep them (a worker in another language) is still read
// correctly, only more slowly, since a reader finds such workers by
// comparing ZCARD worker:index with ZCARD worker:deadline{worker:index}.
//
// Their names carry the hash tag {worker:index}, so that in a Redis
// Cluster they live in the index's hash slot and one script reads the
// index and them together.
const (
	// StatesKey is a sorted set of "<STATE>:<worker id>" members, all of
	// score 0, so that they sort by state, then id: ZRANGE BYLEX pages one
	// state's workers by id and ZLEXCOUNT counts them. A worker is in it
	// under its current state only.
	StatesKey = "worker:states{worker:index}"
	// DeadlineKey is a sorted set of worker ids scored by the Unix seconds
	// at which each turns stale by the rule of StaleFactor (timestamp +
	// StaleFactor x interval), so ZCOUNT counts the alive ones.
	DeadlineKey = "worker:deadline{worker:index}"
)

// StaleFactor is the wire format's staleness rule: a worker is alive while
// its last beat is at most StaleFactor x its own interval old.
const StaleFactor = 1.5

// StateMember returns the member of StatesKey naming worker id in state.
func StateMember(state, id string) string { return state + ":" + id }

// Deadline returns the score of DeadlineKey for a beat stamped ts by a
// worker beating every interval: when that worker turns stale.
func Deadline(ts time.Time, interval time.Duration) float64 {
	return float64(ts.Add(time.Duration(StaleFactor*float64(interval))).UnixMilli()) / 1e3
}

// Write writes one beat of s in the wire format, as a Beater with options
// o does, in one round trip: on one server (or a primary) one MULTI/EXEC;
// on a Redis Cluster (rdb a *redis.ClusterClient), where the hash, the
// index and the stream live in different slots, a script that replaces
// the hash and sets its TTL atomically, pipelined with the index, derived
// keys and stream writes to their nodes. s.Timestamp and s.Interval must
// be set. Of o, only TTL (default 3 x s.Interval), StreamMaxLen and
// StateIndex apply. It is the Beater's own writer, exported for tools that
// speak for many workers, such as a fleet simulator.
func Write(ctx context.Context, rdb redis.Cmdable, s Status, o Options) error {
	if s.WorkerID == "" {
		return errors.New("heartbeat: Write: Status without WorkerID")
	}
	_, err := wire.TxPipelined(rdb)(ctx, func(p redis.Pipeliner) error {
		queueBeat(ctx, p, s, o, wire.IsCluster(rdb))
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat: write %s%s: %w", KeyPrefix, s.WorkerID, err)
	}
	return nil
}

// hashScript replaces a heartbeat hash and sets its TTL in one atomic
// step, for a Redis Cluster, where the beat is no MULTI/EXEC.
//
//	KEYS: the hash; ARGV: TTL ms, field, value, ...
var hashScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return redis.call('PEXPIRE', KEYS[1], ARGV[1])`)

// QueueBeat queues the commands of one beat of s on p, as Write sends
// them but without MULTI and EXEC: inside TxPipelined it is a beat, and
// many of them in one plain pipeline load a simulated fleet quickly (not
// atomically).
func QueueBeat(ctx context.Context, p redis.Pipeliner, s Status, o Options) {
	queueBeat(ctx, p, s, o, false)
}

// queueBeat queues one beat of s on p; in cluster mode the hash is
// replaced by hashScript instead of DEL, HSET and EXPIRE.
func queueBeat(ctx context.Context, p redis.Pipeliner, s Status, o Options, cluster bool) {
	if o.TTL <= 0 {
		o.TTL = 3 * s.Interval
	}
	if o.StreamMaxLen <= 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	key := KeyPrefix + s.WorkerID
	args := s.appendArgs(make([]any, 0, 2*numFields))
	if cluster {
		// EVAL, not EVALSHA: a NOSCRIPT inside a pipeline cannot fall back.
		hashScript.Eval(ctx, p, []string{key}, append([]any{o.TTL.Milliseconds()}, args...)...)
	} else {
		p.Del(ctx, key)
		p.HSet(ctx, key, args...)
		if o.TTL%time.Second == 0 {
			p.Expire(ctx, key, o.TTL)
		} else {
			p.PExpire(ctx, key, o.TTL)
		}
	}
	p.ZAdd(ctx, IndexKey, redis.Z{Score: unixScore(s.Timestamp), Member: s.WorkerID})
	if o.StateIndex {
		indexState(ctx, p, s)
	}
	p.XAdd(ctx, xaddArgs(o.StreamMaxLen, args))
}

// indexState queues the derived keys' update for s: its deadline, and its
// state's member in place of any other state's.
func indexState(ctx context.Context, p redis.Pipeliner, s Status) {
	p.ZAdd(ctx, DeadlineKey, redis.Z{Score: Deadline(s.Timestamp, s.Interval), Member: s.WorkerID})
	others := make([]any, 0, len(stateNames))
	for _, st := range stateNames {
		if st == s.State {
			p.ZAdd(ctx, StatesKey, redis.Z{Score: 0, Member: StateMember(st, s.WorkerID)})
			continue
		}
		others = append(others, StateMember(st, s.WorkerID))
	}
	p.ZRem(ctx, StatesKey, others...)
}

// unindex queues the removal of worker id from the derived keys.
func unindex(ctx context.Context, p redis.Pipeliner, id string) {
	p.ZRem(ctx, DeadlineKey, id)
	members := make([]any, 0, len(stateNames))
	for _, st := range stateNames {
		members = append(members, StateMember(st, id))
	}
	p.ZRem(ctx, StatesKey, members...)
}
