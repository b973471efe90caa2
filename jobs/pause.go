package jobs

import (
	"context"
	"sync/atomic"
	"time"
)

// PauseCheckInterval is how often a consumer reads whether its queue is
// paused: a pause or a resume is honoured within it (plus a read in
// flight, at most Block).
const PauseCheckInterval = time.Second

// gate decides whether a consumer takes new jobs: not while its queue is
// paused (the jobs:<queue>:paused key, shared by every worker), nor while
// the consumer itself is quiet (SetQuiet, one worker's). It is safe for
// concurrent use.
type gate struct {
	quiet     atomic.Bool
	paused    atomic.Bool
	lastCheck time.Time    // the reader's own
	checks    atomic.Int64 // reads of the paused key, for tests
	changed   chan struct{}
}

func newGate() *gate { return &gate{changed: make(chan struct{}, 1)} }

// closed reports whether no new job may be taken.
func (g *gate) closed() bool { return g.quiet.Load() || g.paused.Load() }

// refresh reads the paused key when the last read is older than
// PauseCheckInterval. A failed read keeps the last answer.
func (r *reader) refreshPause(ctx context.Context) {
	now := r.clock.Now()
	if now.Sub(r.gate.lastCheck) < PauseCheckInterval {
		return
	}
	r.gate.lastCheck = now
	n, err := r.rdb.Exists(ctx, r.keys.paused).Result()
	r.gate.checks.Add(1)
	if err != nil {
		return
	}
	if was := r.gate.paused.Swap(n > 0); was != (n > 0) {
		if n > 0 {
			r.log.InfoContext(ctx, "queue paused: taking no new jobs")
		} else {
			r.log.InfoContext(ctx, "queue resumed")
		}
	}
}

// holdWhileClosed gives back the entries read but not started while the
// gate is closed, and waits until it may open: up to PauseCheckInterval,
// or a change of SetQuiet. It reports whether the gate was closed.
func (r *reader) holdWhileClosed(ctx context.Context) bool {
	if !r.gate.closed() {
		r.held.hold(false)
		return false
	}
	r.held.hold(true)
	if ds := r.held.takeWaiting(); len(ds) > 0 {
		r.keeper.giveBack(ctx, ds)
	}
	select {
	case <-ctx.Done():
	case <-r.gate.changed:
	case <-r.clock.After(PauseCheckInterval):
	}
	return true
}

// SetQuiet makes the consumer take no new jobs (on) or take them again
// (off): the jobs running go on and their outcomes are recorded; those read
// ahead and not started are handed back to the group at once, for another
// worker. It takes effect within PauseCheckInterval.
func (c *Consumer) SetQuiet(on bool) {
	if c.reader.gate.quiet.Swap(on) != on {
		poke(c.reader.gate.changed)
		poke(c.held.space)
	}
}

// Quiet reports whether SetQuiet(true) is in effect.
func (c *Consumer) Quiet() bool { return c.reader.gate.quiet.Load() }

// Paused reports whether the consumer last read its queue as paused.
func (c *Consumer) Paused() bool { return c.reader.gate.paused.Load() }
