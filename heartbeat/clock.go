package heartbeat

import "time"

// Clock is the time a Beater reads and waits on. Tests pass a fake that
// they advance, so no test sleeps through an interval.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
