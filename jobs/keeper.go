package jobs

import (
	"context"
	"strconv"
	"sync"
	"time"
)

const (
	// giveBackIdle is the idle time given to an entry handed back, so any
	// worker's next XAUTOCLAIM takes it whatever its visibility timeout.
	giveBackIdle = 24 * time.Hour
	// leaseChunk bounds the ids one lease script call handles.
	leaseChunk = 500
	// promoteLimit bounds the retries one promote script call moves.
	promoteLimit = 100
)

// keeper is the consumer's lease keeper. From start to stop it renews the
// leases of the entries the ledger holds (a third of the visibility timeout
// apart), hands back entries that waited too long for a worker, and moves
// due retries into the stream: at most Block apart, since other workers
// schedule retries too, and at once when a retry the committer wrote here
// is due.
type keeper struct {
	*base
	held *ledger

	nudge     chan struct{} // poked when nextRetry was set
	mu        sync.Mutex
	nextRetry time.Time // earliest retry scheduled here since the loop last looked

	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned
}

func newKeeper(b *base, held *ledger) *keeper {
	return &keeper{base: b, held: held, nudge: make(chan struct{}, 1), done: make(chan struct{})}
}

// start starts the loop.
func (k *keeper) start(ctx context.Context) {
	ctx, k.cancel = context.WithCancel(ctx)
	go k.loop(ctx)
}

// stop ends the loop and waits for it until ctx ends; a call to Redis in
// flight then finishes on its own.
func (k *keeper) stop(ctx context.Context) {
	k.cancel()
	waitDone(ctx, k.done)
}

// retryAt tells the keeper that a retry is due at due.
func (k *keeper) retryAt(due time.Time) {
	k.mu.Lock()
	if k.nextRetry.IsZero() || due.Before(k.nextRetry) {
		k.nextRetry = due
	}
	k.mu.Unlock()
	poke(k.nudge)
}

func (k *keeper) loop(ctx context.Context) {
	defer close(k.done)
	now := k.clock.Now()
	nextLease, nextPromote := now.Add(k.o.VisibilityTimeout/3), now
	for {
		now = k.clock.Now()
		next := nextLease
		if nextPromote.Before(next) {
			next = nextPromote
		}
		select {
		case <-ctx.Done():
			return
		case <-k.clock.After(next.Sub(now)):
		case <-k.nudge:
			k.mu.Lock()
			due := k.nextRetry
			k.nextRetry = time.Time{}
			k.mu.Unlock()
			if !due.IsZero() && due.Before(nextPromote) {
				nextPromote = due
			}
		}
		if now = k.clock.Now(); !now.Before(nextLease) {
			k.giveBackStale(ctx)
			k.renewLeases(ctx)
			now = k.clock.Now()
			nextLease = now.Add(k.o.VisibilityTimeout / 3)
		}
		if !now.Before(nextPromote) {
			nextPromote = now.Add(k.promote(ctx))
		}
	}
}

// renewLeases resets the idle time of every entry this consumer holds, so
// no other worker claims a job that is running, waiting here, or whose
// outcome is being written. An entry another worker claimed anyway (this
// one was cut off from Redis longer than the visibility timeout) is
// dropped if it has not started; if it has, it may run twice, and that is
// worth a warning. An entry acknowledged while the renewal ran (its
// outcome was written meanwhile) is no one's, and no concern.
func (k *keeper) renewLeases(ctx context.Context) {
	lost, err := k.lease(ctx, k.held.ids(), 0, 0)
	if err != nil {
		k.redis.failed(ctx, "renew leases", err)
		return
	}
	if len(lost) == 0 {
		return
	}
	dropped, started := k.held.lost(lost)
	if len(dropped) > 0 {
		k.log.InfoContext(ctx, "another worker claimed jobs read ahead here; dropped them", "count", len(dropped))
	}
	if started > 0 {
		k.log.WarnContext(ctx, "another worker claimed jobs this one started; they may run twice", "count", started)
	}
}

// giveBackStale hands back the entries that waited longer than half the
// visibility timeout for a worker, all of them busy, so that an idle
// worker elsewhere takes them; reading pauses until a worker here frees up.
func (k *keeper) giveBackStale(ctx context.Context) {
	stale := k.held.takeStale(k.clock.Now().Add(-k.o.VisibilityTimeout / 2))
	if len(stale) > 0 {
		k.log.InfoContext(ctx, "handing back jobs that waited for a busy worker", "count", len(stale))
		k.giveBack(ctx, stale)
	}
}

// giveBack hands unstarted entries back to the group: idle enough for the
// next XAUTOCLAIM, their delivery count as before they came here.
func (k *keeper) giveBack(ctx context.Context, ds []*delivery) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.streamID
	}
	if _, err := k.lease(ctx, ids, giveBackIdle, -1); err != nil {
		// They stay pending here and are claimed after the visibility timeout.
		k.redis.failed(ctx, "hand back jobs", err)
	}
}

// lease runs leaseScript over ids in chunks and returns the ids no longer
// this consumer's.
func (k *keeper) lease(ctx context.Context, ids []string, idle time.Duration, countDelta int) ([]string, error) {
	var lost []string
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), leaseChunk)]
		ids = ids[len(chunk):]
		args := make([]any, 0, 4+len(chunk))
		args = append(args, Group, k.name, idle.Milliseconds(), countDelta)
		for _, id := range chunk {
			args = append(args, id)
		}
		got, err := leaseScript.Run(ctx, k.rdb, []string{k.keys.stream}, args...).StringSlice()
		if err != nil {
			return lost, err
		}
		lost = append(lost, got...)
	}
	return lost, nil
}

// promote moves due retries into the stream and returns how long to wait
// before the next look: until the next retry is due, at most Block, since
// other workers schedule retries too.
func (k *keeper) promote(ctx context.Context) time.Duration {
	now := k.clock.Now()
	res, err := promoteScript.Run(ctx, k.rdb, []string{k.keys.retry, k.keys.stream, k.keys.dead},
		now.UnixMilli(), k.o.DeadMaxLen, promoteLimit).Slice()
	if err != nil {
		k.redis.failed(ctx, "promote retries", err)
		return k.o.Block
	}
	if len(res) != 2 {
		return k.o.Block
	}
	if moved, _ := res[0].(int64); moved >= promoteLimit {
		return 0 // more are due
	}
	next, _ := res[1].(string)
	ms, err := strconv.ParseFloat(next, 64)
	if err != nil {
		return k.o.Block
	}
	return min(max(time.UnixMilli(int64(ms)).Sub(now), 0), k.o.Block)
}
