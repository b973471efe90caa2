package fleet

import (
	"encoding/json"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
)

// The values of Worker.Health.
const (
	Alive   = "alive"
	Stale   = "stale"
	Invalid = "invalid"
)

// States are the worker states in lifecycle order: the keys of
// Summary.ByState and the state label values of fleet_workers. Read only.
var States = heartbeat.StateNames()

// Fleet is the fleet as one List read it.
type Fleet struct {
	GeneratedAt time.Time // Redis's time of the read
	Summary     Summary
	Workers     []Worker // sorted by id
}

// Summary counts the workers of a Fleet.
type Summary struct {
	Total   int `json:"total"`
	Alive   int `json:"alive"`
	Stale   int `json:"stale"`
	Invalid int `json:"invalid"`
	// ByState counts the alive workers by state. Every state of States is
	// present, at 0 if need be, so that a count that drops to zero is still
	// a number and not a missing key.
	ByState map[string]int `json:"by_state"`
}

// Worker is one registered worker: its latest heartbeat and the reader's
// judgement of it.
type Worker struct {
	// Status is the decoded heartbeat; for an invalid one only WorkerID is
	// set.
	heartbeat.Status
	Health string // Alive, Stale or Invalid
	Error  string // why the heartbeat is invalid; "" otherwise
	// LastBeatAge is how old the last beat is by Redis's clock.
	LastBeatAge time.Duration
	// ClockSkew is how far the worker's clock runs ahead of Redis's: the
	// beat's timestamp minus Redis's time when the beat was first read, if
	// that is positive. A clock running behind cannot be told from a late
	// beat and is reported as age.
	ClockSkew time.Duration
	Uptime    time.Duration // since the worker's started_at; 0 when unknown
}

// judge judges the decoded heartbeat e of worker id at now.
func (r *Reader) judge(id string, e *entry, now time.Time) Worker {
	if e.reason != "" {
		return invalidWorker(id, e.reason)
	}
	st := e.status
	w := Worker{Status: st, LastBeatAge: now.Sub(st.Timestamp)}
	if st.Timestamp.After(e.firstRead) {
		// Stamped later than our first read of it: the worker's clock is
		// ahead. The beat is at least as new as that read, and ages from
		// there on Redis's clock, also once Redis's clock has passed the
		// timestamp.
		w.ClockSkew = st.Timestamp.Sub(e.firstRead)
		w.LastBeatAge = max(0, now.Sub(e.firstRead))
	}
	w.Health = Alive
	if float64(w.LastBeatAge) > r.o.StaleFactor*float64(st.Interval) {
		w.Health = Stale
	}
	if !st.StartedAt.IsZero() {
		// Both times are the worker's, so its skew cancels out.
		w.Uptime = max(0, st.Timestamp.Sub(st.StartedAt)+w.LastBeatAge)
	}
	return w
}

func invalidWorker(id, reason string) Worker {
	return Worker{Status: heartbeat.Status{Identity: heartbeat.Identity{WorkerID: id}}, Health: Invalid, Error: reason}
}

func summarize(ws []Worker) Summary {
	s := Summary{Total: len(ws), ByState: make(map[string]int, len(States))}
	for _, st := range States {
		s.ByState[st] = 0
	}
	for _, w := range ws {
		switch w.Health {
		case Alive:
			s.Alive++
			s.ByState[w.State]++
		case Stale:
			s.Stale++
		default:
			s.Invalid++
		}
	}
	return s
}

// MarshalJSON writes the fleet as GET /api/fleet serves it:
// {"generated_at": <Unix seconds>, "summary": {...}, "workers": [...]}.
func (f Fleet) MarshalJSON() ([]byte, error) {
	ws := f.Workers
	if ws == nil {
		ws = []Worker{}
	}
	return json.Marshal(struct {
		GeneratedAt float64  `json:"generated_at"`
		Summary     Summary  `json:"summary"`
		Workers     []Worker `json:"workers"`
	}{unixSeconds(f.GeneratedAt), f.Summary, ws})
}

// workerJSON is a Worker as the API writes it: the heartbeat's fields under
// their hash names, then the reader's judgement.
type workerJSON struct {
	heartbeat.Identity
	State         string              `json:"state"`
	StartedAt     *float64            `json:"started_at"` // null when unknown
	Interval      float64             `json:"interval"`
	JobsProcessed uint64              `json:"jobs_processed"`
	JobsFailed    uint64              `json:"jobs_failed"`
	CurrentJob    string              `json:"current_job"`
	Quiet         bool                `json:"quiet"`
	MetricsURL    string              `json:"metrics_url"`
	Resources     heartbeat.Resources `json:"resources"`
	System        heartbeat.System    `json:"system"`
	Timestamp     *float64            `json:"timestamp"` // null when invalid
	Health        string              `json:"health"`
	Error         string              `json:"error"`
	LastBeatAge   float64             `json:"last_beat_age_seconds"`
	ClockSkew     float64             `json:"clock_skew_seconds"`
	Uptime        float64             `json:"uptime_seconds"`
}

func (w Worker) toJSON() workerJSON {
	return workerJSON{
		Identity: w.Identity, State: w.State,
		StartedAt: optionalUnix(w.StartedAt), Interval: w.Interval.Seconds(),
		JobsProcessed: w.JobsProcessed, JobsFailed: w.JobsFailed, CurrentJob: w.CurrentJob, Quiet: w.Quiet, MetricsURL: w.MetricsURL,
		Resources: w.Resources, System: w.System, Timestamp: optionalUnix(w.Timestamp),
		Health: w.Health, Error: w.Error,
		LastBeatAge: w.LastBeatAge.Seconds(), ClockSkew: w.ClockSkew.Seconds(), Uptime: w.Uptime.Seconds(),
	}
}

// MarshalJSON writes the worker as one flat object (docs/wire-format.md,
// "Fleet view").
func (w Worker) MarshalJSON() ([]byte, error) { return json.Marshal(w.toJSON()) }

// unixSeconds is t in Unix seconds to the millisecond, as the heartbeat
// writes times.
func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }

func optionalUnix(t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	s := unixSeconds(t)
	return &s
}
