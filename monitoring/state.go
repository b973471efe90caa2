// Package monitoring makes a botfleet process observable over HTTP: the
// /health, /livez, /readyz and /metrics endpoints, the worker's state
// machine and job counters that they report, and the background sampler of
// the process's resources (memory, CPU, threads, open files). The bot and
// every worker serve it on METRICS_PORT (default 9200).
//
// The vocabulary it reports in (State, Resources, System, Identity) is the
// heartbeat's wire vocabulary, defined in package heartbeat and named here
// for convenience: a monitoring.State is a heartbeat.State.
package monitoring

import "github.com/botfleet/botfleet/heartbeat"

// State is a worker's lifecycle state: heartbeat.State, whose numeric
// value is the worker_state metric's.
type State = heartbeat.State

// The worker states, in lifecycle order.
const (
	StateStarting = heartbeat.StateStarting
	StateIdle     = heartbeat.StateIdle
	StateBusy     = heartbeat.StateBusy
	StateStopping = heartbeat.StateStopping
	StateStopped  = heartbeat.StateStopped
)

// ParseState reads a state name (any case); see heartbeat.ParseState.
func ParseState(name string) (State, error) { return heartbeat.ParseState(name) }

// Resources is what the process uses (heartbeat.Resources).
type Resources = heartbeat.Resources

// System describes where the process runs (heartbeat.System).
type System = heartbeat.System

// Identity is who the process is (heartbeat.Identity); it labels every
// worker_* series.
type Identity = heartbeat.Identity

// Clock is the time a Monitor stamps its results with and waits on
// (heartbeat.Clock, botfleet's one clock).
type Clock = heartbeat.Clock
