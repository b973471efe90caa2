package jobs

import (
	"context"
	"time"
)

// Clock is the time a Queue and a Consumer read and the consumer's loops
// wait on; it has the shape of heartbeat.Clock, so one fake serves both.
// Tests pass a fake that they advance, so no test sleeps through a backoff
// or a lease interval. Deadlines of Redis calls are not the clock's: they
// bound real waits on a real server.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleep waits d on clock or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, clock Clock, d time.Duration) bool {
	select {
	case <-clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
