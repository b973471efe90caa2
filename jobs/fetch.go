package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/clock"
)

// delivery is one stream entry delivered to this consumer.
type delivery struct {
	streamID   string
	values     map[string]any // the entry as read, for retries and dead letters
	job        *Job           // nil when the entry is malformed
	bad        error          // why the entry is malformed
	handler    Handler
	deliveries int64     // times Redis delivered the entry, this time included
	presumed   int       // the attempt number if every earlier delivery ran: the poison check's
	fetched    time.Time // when it was read, for handing back stale prefetches
	startedAt  time.Time // when a worker started it; set before its running op is queued
	started    bool      // a worker took it; guarded by the ledger's lock
	taken      bool      // started, and another consumer owns it now; guarded by the ledger's lock
}

// reader fills the ledger while Run runs: first entries whose worker died
// (XAUTOCLAIM, every half visibility timeout), then new ones (XREADGROUP),
// never more than the ledger has room for. Entries that must not run are
// handed to the committer to dead-letter.
type reader struct {
	*base
	held   *ledger
	mux    *Mux
	com    *committer
	gate   *gate
	keeper *keeper

	claimCursor string // the loop's own

	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has returned
	err    error         // the loop's, set before done is closed
}

func newReader(b *base, held *ledger, mux *Mux, com *committer) *reader {
	return &reader{base: b, held: held, mux: mux, com: com, gate: newGate(), claimCursor: "0-0", done: make(chan struct{})}
}

// start starts the loop; it ends when ctx does, when stop is called, or
// when the client was closed.
func (r *reader) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		r.err = r.loop(ctx)
	}()
}

// stop ends the loop and returns its error. It waits for a read in flight
// until ctx ends; what that read returns later stays pending here and is
// claimed by another worker after the visibility timeout.
func (r *reader) stop(ctx context.Context) error {
	r.cancel()
	if !waitDone(ctx, r.done) {
		return nil
	}
	return r.err
}

// loop reads until ctx is done. It returns an error only if the client was
// closed, which no retry can mend.
func (r *reader) loop(ctx context.Context) error {
	var (
		groupReady bool
		lastClaim  time.Time
		failures   int
	)
	claimEvery := r.o.VisibilityTimeout / 2
	for ctx.Err() == nil {
		if !groupReady {
			if err := r.ensureGroup(ctx); err != nil {
				if errors.Is(err, redis.ErrClosed) {
					return fmt.Errorf("jobs: %w", err)
				}
				failures++
				r.redis.failed(ctx, "create group", err)
				clock.Sleep(ctx, r.clock, retryWait(failures))
				continue
			}
			groupReady = true
		}
		r.refreshPause(ctx)
		if r.holdWhileClosed(ctx) {
			continue
		}
		n := r.held.want()
		if n == 0 {
			select {
			case <-r.held.space:
			case <-r.gate.changed:
				poke(r.gate.changed) // for holdWhileClosed
			case <-r.clock.After(PauseCheckInterval): // a pause must stop the waiting ones too
			case <-ctx.Done():
			}
			continue
		}
		now := r.clock.Now()
		claimNow := now.Sub(lastClaim) >= claimEvery
		if claimNow {
			lastClaim = now
		}
		ds, err := r.fetch(ctx, n, claimNow)
		switch {
		case ctx.Err() != nil:
			r.accept(ctx, ds) // Run hands them back
			return nil
		case errors.Is(err, redis.ErrClosed):
			return fmt.Errorf("jobs: %w", err)
		case isNoGroup(err): // Redis lost the group (restarted empty): make it again
			groupReady = false
		case err != nil:
			failures++
			r.redis.failed(ctx, "read", err)
			clock.Sleep(ctx, r.clock, retryWait(failures))
		default:
			failures = 0
			r.redis.ok(ctx)
			r.accept(ctx, ds)
		}
	}
	return nil
}

// fetch claims up to n abandoned entries if claimNow, else (or if there
// were none) reads up to n new ones.
func (r *reader) fetch(ctx context.Context, n int, claimNow bool) ([]*delivery, error) {
	if claimNow {
		if ds, err := r.claim(ctx, n); err != nil || len(ds) > 0 {
			return ds, err
		}
	}
	return r.read(ctx, n, min(r.o.Block, r.o.VisibilityTimeout/2))
}

// ensureGroup creates the stream and the group if missing. The group starts
// at the stream's beginning, so jobs enqueued before any worker ran are
// delivered.
func (r *reader) ensureGroup(ctx context.Context) error {
	err := r.rdb.XGroupCreateMkStream(ctx, r.keys.stream, Group, "0").Err()
	if err != nil && isReplyError(err) && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP" {
		return nil
	}
	return err
}

// read reads up to n new entries, waiting up to block for the first.
func (r *reader) read(ctx context.Context, n int, block time.Duration) ([]*delivery, error) {
	streams, err := r.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: r.name, Streams: []string{r.keys.stream, ">"},
		Count: int64(n), Block: max(block, time.Millisecond),
	}).Result()
	if err == redis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ds []*delivery
	for _, s := range streams {
		for _, m := range s.Messages {
			ds = append(ds, r.newDelivery(m, 1, -1))
		}
	}
	return ds, nil
}

// claim takes over up to n entries idle longer than the visibility timeout:
// their worker died, or gave them back. Their delivery counts come with
// them, so a job that kills every worker running it is caught; and so do
// the attempts their hashes say started, so a job its worker read ahead
// and never started runs as the same attempt.
func (r *reader) claim(ctx context.Context, n int) ([]*delivery, error) {
	msgs, next, deleted, err := r.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
		Stream: r.keys.stream, Group: Group, Consumer: r.name,
		MinIdle: r.o.VisibilityTimeout, Start: r.claimCursor, Count: int64(n),
	}).Result()
	if err != nil {
		return nil, err
	}
	r.claimCursor = next
	if len(deleted) > 0 {
		r.log.WarnContext(ctx, "pending jobs were deleted from the stream before they finished (by hand, or by a producer that trims it)",
			"count", len(deleted))
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	counts := make([]*redis.XPendingExtCmd, len(msgs))
	started := make([]*redis.StringCmd, len(msgs))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			counts[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: r.keys.stream, Group: Group, Start: m.ID, End: m.ID, Count: 1,
			})
			if id, ok := m.Values[fieldID].(string); ok && id != "" && len(id) <= maxIDLen {
				started[i] = p.HGet(ctx, r.keys.jobKey(id), fieldAttempts)
			}
		}
		return nil
	})
	ds := make([]*delivery, len(msgs))
	for i, m := range msgs {
		n, runs := int64(1), -1
		if p := counts[i].Val(); len(p) == 1 {
			n = p[0].RetryCount
		}
		if started[i] != nil {
			if v, err := started[i].Int(); err == nil {
				runs = v
			}
		}
		ds[i] = r.newDelivery(m, n, runs)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		// The entries are ours now; without their counts they run as claimed.
		r.log.WarnContext(ctx, "claimed jobs' delivery counts unknown", "error", err)
	}
	r.log.InfoContext(ctx, "claimed jobs another worker left: it stopped, or handed them back", "count", len(ds))
	return ds, nil
}

// newDelivery decodes an entry delivered n times, of a job whose hash says
// runs attempts started (-1: unknown).
//
// The attempt a run is is the entry's attempt field, unless the job's hash
// says a run of this entry started already: an earlier delivery ended with
// its worker mid-run, and this is the next attempt. A delivery read ahead
// by a worker that stopped before starting it is no attempt.
func (r *reader) newDelivery(m redis.XMessage, n int64, runs int) *delivery {
	d := &delivery{streamID: m.ID, values: m.Values, deliveries: n, fetched: r.clock.Now()}
	job, err := decode(m.Values)
	if err != nil {
		d.bad = err
		return d
	}
	job.Queue = r.queue
	if job.MaxAttempts == 0 {
		job.MaxAttempts = r.o.MaxAttempts
	}
	d.presumed = job.Attempt + int(n-1)
	if n > 1 && runs >= job.Attempt {
		job.Attempt = runs + 1
	}
	d.job = job
	return d
}

// accept holds new deliveries and queues them to run, or dead-letters
// those that must not run.
func (r *reader) accept(ctx context.Context, ds []*delivery) {
	if len(ds) == 0 {
		return
	}
	var (
		dead []op
		run  = make([]*delivery, 0, len(ds))
		now  = r.clock.Now()
	)
	for _, d := range ds {
		reason := r.refuse(d)
		if reason == "" {
			run = append(run, d)
			continue
		}
		attempts := -1 // a malformed entry's hash, if any, keeps its count
		if d.job != nil {
			attempts = d.job.Attempt - 1 // the ones that ran
		}
		dead = append(dead, op{kind: opDead, d: d, at: now, err: reason, cause: errors.New(reason), attempts: attempts})
	}
	r.held.add(ds, run)
	for _, o := range dead {
		r.log.ErrorContext(ctx, "job dead-lettered without running", "stream_id", o.d.streamID, "job_id", o.d.jobID(), "error", o.err)
		r.com.add(o)
	}
}

// refuse says why d must not run, or "" if it may; it also finds d's handler.
func (r *reader) refuse(d *delivery) string {
	switch {
	case d.job == nil:
		return "malformed entry: " + d.bad.Error()
	case d.presumed > d.job.MaxAttempts && d.deliveries > 1:
		// Its runs may have killed their workers before they were
		// recorded: count every delivery as one.
		d.job.Attempt = d.presumed
		return fmt.Sprintf("delivered %d times without finishing (the workers running it stopped); %d attempts allowed, not run again",
			d.deliveries, d.job.MaxAttempts)
	case d.job.Attempt > d.job.MaxAttempts:
		return fmt.Sprintf("attempt %d: more than max_attempts %d", d.job.Attempt, d.job.MaxAttempts)
	}
	h, ok := r.mux.handler(d.job.Type)
	if !ok {
		return fmt.Sprintf("unknown job type %q: no handler registered", d.job.Type)
	}
	d.handler = h
	return ""
}

// jobID returns the id field of d's entry, even when the entry is malformed,
// or "".
func (d *delivery) jobID() string {
	if d.job != nil {
		return d.job.ID
	}
	id, _ := d.values[fieldID].(string)
	if len(id) > maxIDLen {
		return ""
	}
	return id
}

// deadJob returns d's job for OnDead: for a malformed entry, what could be
// read of it.
func (d *delivery) deadJob(queue string) *Job {
	if d.job != nil {
		return d.job
	}
	typ, _ := d.values[fieldType].(string)
	return &Job{ID: d.jobID(), Type: truncate(typ, maxTypeLen), Queue: queue}
}
