// Package clock is the one time source botfleet's waiting loops read and
// wait on: the heartbeat, the job consumer's loops and the health
// monitor. Tests pass a fake they advance, so no test sleeps through an
// interval. heartbeat.Clock, jobs.Clock and monitoring.Clock name this
// type for their users.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and waits. Implementations must be safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Or returns c, or Real when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Sleep waits d on c or until ctx is done, and reports whether d passed.
func Sleep(ctx context.Context, c Clock, d time.Duration) bool {
	select {
	case <-c.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
