package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultReplicaTimeout is Replicas.Timeout's default.
const DefaultReplicaTimeout = time.Second

// ErrNotReplicated is returned (wrapped) by Enqueue and EnqueueWith when
// Replicas.Wait is set and fewer replicas than that confirmed the job
// within Replicas.Timeout. The master has the job, but a failover now
// could lose it: the caller does not report it accepted. A submission
// again with the same ID or idempotency key never queues a second copy.
var ErrNotReplicated = errors.New("jobs: not confirmed by enough replicas")

// Replicas is how many of the master's replicas must have a job before
// Enqueue reports it queued (QueueOptions.Replicas). Redis replicates
// asynchronously: the master answers a write before its replicas have
// it, so a failover right after an accepted job can promote a replica
// that never saw it. With Wait set, Enqueue sends Redis's WAIT on the same
// connection as the job's write, in the same round trip, and returns
// ErrNotReplicated unless Wait replicas confirm it within Timeout. The
// zero value waits for none, as Redis does by default.
type Replicas struct {
	// Wait is how many replicas must confirm each enqueued job
	// (REDIS_WAIT_REPLICAS). Zero: none.
	Wait int
	// Timeout bounds the wait (REDIS_WAIT_TIMEOUT). Zero means
	// DefaultReplicaTimeout. It must be shorter than the client's read
	// timeout (go-redis's default: 3s) and the caller's deadline.
	Timeout time.Duration
}

// run runs s as s.Run does and, with r.Wait set, WAITs for r.Wait replicas
// on the same connection: one pipeline of EVAL and WAIT. EVAL, not
// EVALSHA: a promoted replica does not know the scripts its master ran,
// and an EVALSHA answered NOSCRIPT would still make its WAIT block, up to
// the whole Timeout when the heir has no replica yet, before the EVAL
// could be sent; the script's text costs a few hundred microseconds of
// loopback at most, against a wait for replicas.
func (r Replicas) run(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	if r.Wait <= 0 {
		return s.Run(ctx, rdb, keys, args...)
	}
	if c, ok := rdb.(*redis.ClusterClient); ok {
		// WAIT counts the replicas of the connection's node: send both
		// to the master of the keys' slot.
		node, err := c.MasterForKey(ctx, keys[0])
		if err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(err)
			return cmd
		}
		rdb = node
	}
	return r.pipelined(ctx, rdb, func(p redis.Pipeliner) *redis.Cmd { return s.Eval(ctx, p, keys, args...) })
}

// pipelined sends write and WAIT in one pipeline and returns write's
// reply, or an error wrapping ErrNotReplicated when WAIT counts fewer
// than r.Wait replicas.
func (r Replicas) pipelined(ctx context.Context, rdb redis.UniversalClient, write func(redis.Pipeliner) *redis.Cmd) *redis.Cmd {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultReplicaTimeout
	}
	p := rdb.Pipeline()
	cmd := write(p)
	wait := p.Do(ctx, "wait", r.Wait, timeout.Milliseconds())
	_, _ = p.Exec(ctx)
	if cmd.Err() != nil {
		return cmd
	}
	n, err := wait.Int64()
	switch {
	case err != nil:
		// %v, not %w: the write succeeded, so an error reply to WAIT
		// must not read as a refused job (wire.IsReplyError).
		err = fmt.Errorf("%w: WAIT: %v", ErrNotReplicated, err)
	case n < int64(r.Wait):
		err = fmt.Errorf("%w: %d of %d replicas within %v", ErrNotReplicated, n, r.Wait, timeout)
	default:
		return cmd
	}
	failed := redis.NewCmd(ctx)
	failed.SetErr(err)
	return failed
}
