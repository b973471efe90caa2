package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// delivery is one stream entry delivered to this consumer.
type delivery struct {
	streamID   string
	values     map[string]any // the entry as read, for retries and dead letters
	job        *Job           // nil when the entry is malformed
	bad        error          // why the entry is malformed
	handler    Handler
	deliveries int64     // times Redis delivered the entry, this time included
	fetched    time.Time // when it was read, for handing back stale prefetches
}

// readLoop fills the waiting list until ctx is done: first entries whose
// worker died (XAUTOCLAIM, every half visibility timeout), then new ones
// (XREADGROUP), never holding more than c.prefetch. It returns an error
// only if the client was closed, which no retry can mend.
func (c *Consumer) readLoop(ctx context.Context) error {
	var (
		groupReady bool
		lastClaim  time.Time
		failures   int
	)
	claimEvery := c.o.VisibilityTimeout / 2
	for ctx.Err() == nil {
		if !groupReady {
			if err := c.ensureGroup(ctx); err != nil {
				if errors.Is(err, redis.ErrClosed) {
					return fmt.Errorf("jobs: %w", err)
				}
				failures++
				c.redisFailed(ctx, "create group", err)
				sleepCtx(ctx, retryWait(failures))
				continue
			}
			groupReady = true
		}
		n := c.want()
		if n == 0 {
			select {
			case <-c.space:
			case <-ctx.Done():
			}
			continue
		}
		claimNow := time.Since(lastClaim) >= claimEvery
		if claimNow {
			lastClaim = time.Now()
		}
		ds, err := c.fetch(ctx, n, claimNow)
		switch {
		case ctx.Err() != nil:
			c.accept(ctx, ds) // Run hands them back
			return nil
		case errors.Is(err, redis.ErrClosed):
			return fmt.Errorf("jobs: %w", err)
		case isNoGroup(err): // Redis lost the group (restarted empty): make it again
			groupReady = false
		case err != nil:
			failures++
			c.redisFailed(ctx, "read", err)
			sleepCtx(ctx, retryWait(failures))
		default:
			failures = 0
			c.redisOK(ctx)
			c.accept(ctx, ds)
		}
	}
	return nil
}

// fetch claims up to n abandoned entries if claimNow, else (or if there
// were none) reads up to n new ones.
func (c *Consumer) fetch(ctx context.Context, n int, claimNow bool) ([]*delivery, error) {
	if claimNow {
		if ds, err := c.claim(ctx, n); err != nil || len(ds) > 0 {
			return ds, err
		}
	}
	return c.read(ctx, n, min(c.o.Block, c.o.VisibilityTimeout/2))
}

// ensureGroup creates the stream and the group if missing. The group starts
// at the stream's beginning, so jobs enqueued before any worker ran are
// delivered.
func (c *Consumer) ensureGroup(ctx context.Context) error {
	err := c.rdb.XGroupCreateMkStream(ctx, c.keys.stream, Group, "0").Err()
	if err != nil && isReplyError(err) && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP" {
		return nil
	}
	return err
}

// want returns how many entries to read now: enough to fill the prefetch,
// once half of it has been taken by the workers, so they never wait for a
// read; none while all workers are stuck on long jobs. Entries whose
// outcome is being written count too, up to a second prefetch, so a slow
// Redis slows reading down.
func (c *Consumer) want() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) >= max(c.o.Concurrency, c.prefetch/2) || c.stalled && c.running >= c.o.Concurrency {
		return 0
	}
	return max(min(c.prefetch-len(c.waiting)-c.running, 2*c.prefetch-len(c.tracked)), 0)
}

// read reads up to n new entries, waiting up to block for the first.
func (c *Consumer) read(ctx context.Context, n int, block time.Duration) ([]*delivery, error) {
	streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: c.name, Streams: []string{c.keys.stream, ">"},
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
			ds = append(ds, c.newDelivery(m, 1))
		}
	}
	return ds, nil
}

// claim takes over up to n entries idle longer than the visibility timeout:
// their worker died, or gave them back. Their delivery counts come with
// them, so a job that kills every worker running it is caught.
func (c *Consumer) claim(ctx context.Context, n int) ([]*delivery, error) {
	msgs, next, deleted, err := c.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
		Stream: c.keys.stream, Group: Group, Consumer: c.name,
		MinIdle: c.o.VisibilityTimeout, Start: c.claimCursor, Count: int64(n),
	}).Result()
	if err != nil {
		return nil, err
	}
	c.claimCursor = next
	if len(deleted) > 0 {
		c.log.WarnContext(ctx, "pending jobs were trimmed from the stream before they finished; raise StreamMaxLen",
			"count", len(deleted))
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	counts := make([]*redis.XPendingExtCmd, len(msgs))
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			counts[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: c.keys.stream, Group: Group, Start: m.ID, End: m.ID, Count: 1,
			})
		}
		return nil
	})
	ds := make([]*delivery, len(msgs))
	for i, m := range msgs {
		n := int64(1)
		if p := counts[i].Val(); len(p) == 1 {
			n = p[0].RetryCount
		}
		ds[i] = c.newDelivery(m, n)
	}
	if err != nil {
		// The entries are ours now; without their counts they run as claimed.
		c.log.WarnContext(ctx, "claimed jobs' delivery counts unknown", "error", err)
	}
	c.log.InfoContext(ctx, "claimed jobs another worker left: it stopped, or handed them back", "count", len(ds))
	return ds, nil
}

// newDelivery decodes an entry delivered n times.
func (c *Consumer) newDelivery(m redis.XMessage, n int64) *delivery {
	d := &delivery{streamID: m.ID, values: m.Values, deliveries: n, fetched: time.Now()}
	job, err := decode(m.Values)
	if err != nil {
		d.bad = err
	} else {
		job.Queue = c.queue
		if job.MaxAttempts == 0 {
			job.MaxAttempts = c.o.MaxAttempts
		}
		// A redelivery is a new attempt: the last one ended with its worker.
		job.Attempt += int(n - 1)
		d.job = job
	}
	return d
}

// accept tracks new deliveries and queues them to run, or dead-letters
// those that must not run.
func (c *Consumer) accept(ctx context.Context, ds []*delivery) {
	if len(ds) == 0 {
		return
	}
	var dead []op
	now := c.o.Now()
	c.mu.Lock()
	for _, d := range ds {
		c.tracked[d.streamID] = d
		if reason := c.refuse(d); reason != "" {
			attempts := -1 // a malformed entry's hash, if any, keeps its count
			if d.job != nil {
				attempts = d.job.Attempt - 1 // the ones that ran
			}
			dead = append(dead, op{kind: opDead, d: d, at: now, err: reason, attempts: attempts})
			continue
		}
		c.waiting = append(c.waiting, d)
	}
	c.mu.Unlock()
	poke(c.ready)
	for _, o := range dead {
		c.log.ErrorContext(ctx, "job dead-lettered without running", "stream_id", o.d.streamID, "job_id", o.d.jobID(), "error", o.err)
		c.com.add(o)
	}
}

// refuse says why d must not run, or "" if it may; it also finds d's handler.
func (c *Consumer) refuse(d *delivery) string {
	switch {
	case d.job == nil:
		return "malformed entry: " + d.bad.Error()
	case d.job.Attempt > d.job.MaxAttempts && d.deliveries > 1:
		return fmt.Sprintf("delivered %d times without finishing (the workers running it stopped); %d attempts allowed, not run again",
			d.deliveries, d.job.MaxAttempts)
	case d.job.Attempt > d.job.MaxAttempts:
		return fmt.Sprintf("attempt %d: more than max_attempts %d", d.job.Attempt, d.job.MaxAttempts)
	}
	h, ok := c.mux.handler(d.job.Type)
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
	if len(id) > 200 {
		return ""
	}
	return id
}
