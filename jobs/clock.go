package jobs

import "github.com/botfleet/botfleet/internal/clock"

// Clock is the time a Queue and a Consumer read and the consumer's loops
// wait on: botfleet's one clock (Now and After), shared with the heartbeat
// and the health monitor. Tests pass a fake that they advance, so no test
// sleeps through a backoff or a lease interval. Deadlines of Redis calls
// are not the clock's: they bound real waits on a real server.
type Clock = clock.Clock
