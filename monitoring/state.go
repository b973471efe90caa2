// Package monitoring makes a botfleet process observable over HTTP: the
// /health, /livez, /readyz and /metrics endpoints, the worker's state
// machine and job counters that they report, and the background sampler of
// the process's resources (memory, CPU, threads, open files). The bot and
// every worker serve it on METRICS_PORT (default 9200).
package monitoring

import (
	"fmt"
	"strings"
)

// State is a worker's lifecycle state. Its numeric value is the value of
// the worker_state metric, a contract with the dashboards and alerts:
// 0 STARTING, 1 IDLE, 2 BUSY, 3 STOPPING, 4 STOPPED.
type State int32

// The worker states, in lifecycle order.
const (
	StateStarting State = iota
	StateIdle
	StateBusy
	StateStopping
	StateStopped
)

var stateNames = [...]string{"STARTING", "IDLE", "BUSY", "STOPPING", "STOPPED"}

// String returns the state's name as the heartbeat and /health write it.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ParseState reads a state name (any case).
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(name, n) {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("state %q: want one of STARTING, IDLE, BUSY, STOPPING, STOPPED", name)
}

// Resources is what the process uses, as /health and the heartbeat report
// it (the design's "resources" object).
type Resources struct {
	MemoryMB      float64 `json:"memory_mb"`
	MemoryPercent float64 `json:"memory_percent"`
	CPUPercent    float64 `json:"cpu_percent"`
	NumThreads    int     `json:"num_threads"`
	OpenFiles     int     `json:"open_files"`
}

// System describes where the process runs (the design's "system" object;
// go_version stands where the Python design had python_version).
type System struct {
	Hostname  string `json:"hostname"`
	Platform  string `json:"platform"`
	GoVersion string `json:"go_version"`
	PID       int    `json:"pid"`
}
