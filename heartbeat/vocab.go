package heartbeat

import (
	"fmt"
	"log/slog"
	"strings"
)

// State is a worker's lifecycle state. Its numeric value is the value of
// the worker_state metric, a contract with the dashboards and alerts:
// 0 STARTING, 1 IDLE, 2 BUSY, 3 STOPPING, 4 STOPPED. Its name is what the
// heartbeat's state field and /health carry.
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

// StateNames returns the state names in lifecycle order.
func StateNames() []string { return append([]string(nil), stateNames[:]...) }

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

// Identity is who a fleet process is: one value from which the heartbeat's
// identity fields, the log records' context fields and the metrics' labels
// are all derived, so that they never disagree. Its JSON names are the
// heartbeat's field names.
type Identity struct {
	WorkerID      string `json:"worker_id"` // empty for a process that is not a worker (the bot)
	Service       string `json:"service"`   // "worker", "bot", or a frontend's service name
	Hostname      string `json:"hostname"`
	ContainerID   string `json:"container_id"`
	DeploymentEnv string `json:"deployment_env"`
	Region        string `json:"region"`
	Version       string `json:"version"`
}

// LogAttrs returns the identity as log attributes under the log format's
// field names (service, worker_id, hostname, container_id,
// deployment_env, region); empty fields are left out, and so is the
// version, which a log record does not carry.
func (id Identity) LogAttrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 6)
	for _, kv := range [...][2]string{
		{"service", id.Service}, {"worker_id", id.WorkerID}, {"hostname", id.Hostname},
		{"container_id", id.ContainerID}, {"deployment_env", id.DeploymentEnv}, {"region", id.Region},
	} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	return attrs
}

// Labels returns the labels of a worker's metric series, which keep one
// worker's series apart from another's and join them with its logs:
// worker_id, hostname, container_id, deployment_env and region, present
// even when empty so that every series of a kind has the same label names.
func (id Identity) Labels() map[string]string {
	return map[string]string{
		"worker_id":      id.WorkerID,
		"hostname":       id.Hostname,
		"container_id":   id.ContainerID,
		"deployment_env": id.DeploymentEnv,
		"region":         id.Region,
	}
}

// InfoLabels returns the labels of a process's *_info metric that is not
// a worker (bot_info): service, hostname, container_id, deployment_env,
// region, version and goVersion. A worker's worker_info carries Labels,
// version and go_version.
func (id Identity) InfoLabels(goVersion string) map[string]string {
	l := id.Labels()
	delete(l, "worker_id")
	l["service"] = id.Service
	l["version"] = id.Version
	l["go_version"] = goVersion
	return l
}
