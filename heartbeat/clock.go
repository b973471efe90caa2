package heartbeat

import "github.com/botfleet/botfleet/internal/clock"

// Clock is the time a Beater reads and waits on: botfleet's one clock
// (Now and After), shared with the job consumer and the health monitor.
// Tests pass a fake that they advance, so no test sleeps through an
// interval.
type Clock = clock.Clock
