package jobs

import (
	"context"
	"strconv"
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

// keep runs the consumer's background chores until Shutdown ends it:
// renewing the leases of the entries it holds (a third of the visibility
// timeout apart), handing back entries that waited too long for a worker,
// and moving due retries into the stream.
func (c *Consumer) keep(ctx context.Context) {
	defer c.keeper.Done()
	lease := time.NewTicker(c.o.VisibilityTimeout / 3)
	defer lease.Stop()
	promote := time.NewTimer(0)
	defer promote.Stop()
	target := time.Now() // when promote fires
	for {
		select {
		case <-c.stopKeeper:
			return
		case <-lease.C:
			c.giveBackStale(ctx)
			c.renewLeases(ctx)
		case <-promote.C:
			wait := c.promote(ctx)
			target = time.Now().Add(wait)
			promote.Reset(wait)
		case <-c.retryNudge:
			c.mu.Lock()
			due := c.nextRetry
			c.nextRetry = time.Time{}
			c.mu.Unlock()
			if at := time.Now().Add(due.Sub(c.o.Now())); !due.IsZero() && at.Before(target) {
				target = at
				promote.Reset(max(time.Until(at), 0))
			}
		}
	}
}

// renewLeases resets the idle time of every entry this consumer holds, so
// no other worker claims a job that is running, waiting here, or whose
// outcome is being written. An entry another worker claimed anyway (this
// one was cut off from Redis longer than the visibility timeout) is
// dropped if it has not started.
func (c *Consumer) renewLeases(ctx context.Context) {
	c.mu.Lock()
	ids := make([]string, 0, len(c.tracked))
	for id := range c.tracked {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	lost, err := c.lease(ctx, ids, 0, 0)
	if err != nil {
		c.redisFailed(ctx, "renew leases", err)
		return
	}
	if len(lost) == 0 {
		return
	}
	lostSet := make(map[string]bool, len(lost))
	for _, id := range lost {
		lostSet[id] = true
	}
	c.mu.Lock()
	kept := c.waiting[:0]
	var dropped []*delivery
	for _, d := range c.waiting {
		if lostSet[d.streamID] {
			dropped = append(dropped, d)
			continue
		}
		kept = append(kept, d)
	}
	clear(c.waiting[len(kept):])
	c.waiting = kept
	c.untrackLocked(dropped)
	c.mu.Unlock()
	c.log.WarnContext(ctx, "another worker claimed jobs this one holds; unstarted ones are dropped, running ones may run twice",
		"claimed", len(lost), "dropped", len(dropped))
}

// giveBackStale hands back the entries that waited longer than half the
// visibility timeout for a worker, all of them busy, so that an idle
// worker elsewhere takes them; reading pauses until a worker here frees up.
func (c *Consumer) giveBackStale(ctx context.Context) {
	cutoff := time.Now().Add(-c.o.VisibilityTimeout / 2)
	c.mu.Lock()
	n := 0
	for n < len(c.waiting) && c.waiting[n].fetched.Before(cutoff) {
		n++
	}
	stale := append([]*delivery(nil), c.waiting[:n]...)
	clear(c.waiting[:n])
	c.waiting = c.waiting[n:]
	c.untrackLocked(stale)
	if n > 0 {
		c.stalled = true
	}
	c.mu.Unlock()
	if n > 0 {
		c.log.InfoContext(ctx, "handing back jobs that waited for a busy worker", "count", n)
		c.giveBack(ctx, stale)
	}
}

// giveBack hands unstarted entries back to the group: idle enough for the
// next XAUTOCLAIM, their delivery count as before they came here.
func (c *Consumer) giveBack(ctx context.Context, ds []*delivery) {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.streamID
	}
	if _, err := c.lease(ctx, ids, giveBackIdle, -1); err != nil {
		// They stay pending here and are claimed after the visibility timeout.
		c.redisFailed(ctx, "hand back jobs", err)
	}
}

// lease runs leaseScript over ids in chunks and returns the ids no longer
// this consumer's.
func (c *Consumer) lease(ctx context.Context, ids []string, idle time.Duration, countDelta int) ([]string, error) {
	var lost []string
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), leaseChunk)]
		ids = ids[len(chunk):]
		args := make([]any, 0, 4+len(chunk))
		args = append(args, Group, c.name, idle.Milliseconds(), countDelta)
		for _, id := range chunk {
			args = append(args, id)
		}
		got, err := leaseScript.Run(ctx, c.rdb, []string{c.keys.stream}, args...).StringSlice()
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
func (c *Consumer) promote(ctx context.Context) time.Duration {
	now := c.o.Now()
	res, err := promoteScript.Run(ctx, c.rdb, []string{c.keys.retry, c.keys.stream, c.keys.dead},
		now.UnixMilli(), c.o.StreamMaxLen, c.o.DeadMaxLen, promoteLimit).Slice()
	if err != nil {
		c.redisFailed(ctx, "promote retries", err)
		return c.o.Block
	}
	if len(res) != 2 {
		return c.o.Block
	}
	if moved, _ := res[0].(int64); moved >= promoteLimit {
		return 0 // more are due
	}
	next, _ := res[1].(string)
	ms, err := strconv.ParseFloat(next, 64)
	if err != nil {
		return c.o.Block
	}
	return min(max(time.UnixMilli(int64(ms)).Sub(now), 0), c.o.Block)
}
