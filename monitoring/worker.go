package monitoring

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidTransition is wrapped by the error SetState returns for a
// transition the state machine does not allow.
var ErrInvalidTransition = errors.New("invalid state transition")

// allowed lists, for each state, the states it may move to.
var allowed = [...][]State{
	StateStarting: {StateIdle, StateStopping},
	StateIdle:     {StateBusy, StateStopping},
	StateBusy:     {StateIdle, StateStopping},
	StateStopping: {StateStopped},
	StateStopped:  nil,
}

func transitionAllowed(from, to State) bool {
	return from >= 0 && int(from) < len(allowed) && slices.Contains(allowed[from], to)
}

// durationObserver receives every finished job's duration; the metrics
// registration installs one that feeds worker_job_duration_seconds.
type durationObserver func(jobType string, took time.Duration, err error)

// Worker is the one place that holds a worker's lifecycle state and job
// counters: the job loop drives it, and /health, /metrics and the heartbeat
// read it. It is safe for concurrent use.
type Worker struct {
	id        string
	now       func() time.Time
	startedAt time.Time
	observer  atomic.Pointer[durationObserver]

	mu        sync.Mutex
	state     State
	processed uint64
	failed    uint64
	dead      uint64
	current   map[string]string // job id -> job type
	listeners []func(old, new State)
}

// NewWorker returns a Worker in state STARTING whose StartedAt is now().
// A nil now means time.Now.
func NewWorker(id string, now func() time.Time) *Worker {
	if now == nil {
		now = time.Now
	}
	return &Worker{id: id, now: now, startedAt: now(), current: make(map[string]string)}
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.id }

// uptime returns how long ago the worker was created, by its clock.
func (w *Worker) uptime() time.Duration { return w.now().Sub(w.startedAt) }

// State returns the current state.
func (w *Worker) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// SetState moves the worker to s. The allowed moves are STARTING to IDLE
// or STOPPING, IDLE to BUSY and back, IDLE or BUSY to STOPPING, and
// STOPPING to STOPPED; setting the current state again does nothing. Any
// other move returns an error wrapping ErrInvalidTransition that names both
// states, and leaves the state as it was.
func (w *Worker) SetState(s State) error {
	w.mu.Lock()
	old := w.state
	if old == s {
		w.mu.Unlock()
		return nil
	}
	if !transitionAllowed(old, s) {
		w.mu.Unlock()
		return fmt.Errorf("monitoring: worker %q: %s -> %s: %w", w.id, old, s, ErrInvalidTransition)
	}
	w.state = s
	listeners := w.listeners
	w.mu.Unlock()
	notify(listeners, old, s)
	return nil
}

// OnChange adds f to the functions called after every state change, with
// the old and new state. They run on the goroutine that made the change,
// outside the Worker's lock, so f may call the Worker's methods; f should
// return quickly. Changes made concurrently may reach f out of order, but
// every call describes a transition that happened.
func (w *Worker) OnChange(f func(old, new State)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Copy on write: SetState hands the slice to notify after unlocking.
	w.listeners = append(slices.Clip(w.listeners), f)
}

func notify(listeners []func(old, new State), old, new State) {
	for _, f := range listeners {
		f(old, new)
	}
}

// JobStarted records that the job jobID of type jobType began; an IDLE
// worker becomes BUSY.
func (w *Worker) JobStarted(jobID, jobType string) {
	w.mu.Lock()
	w.current[jobID] = jobType
	old := w.state
	if old != StateIdle {
		w.mu.Unlock()
		return
	}
	w.state = StateBusy
	listeners := w.listeners
	w.mu.Unlock()
	notify(listeners, old, StateBusy)
}

// JobFinished records that the job jobID ended after took: every finished
// job counts as processed, and as failed too when err is not nil. The
// duration is observed by job type in worker_job_duration_seconds once the
// metrics are registered. A BUSY worker with no job left becomes IDLE; a
// STOPPING one stays STOPPING.
func (w *Worker) JobFinished(jobID, jobType string, took time.Duration, err error) {
	if obs := w.observer.Load(); obs != nil {
		(*obs)(jobType, took, err)
	}
	w.mu.Lock()
	w.processed++
	if err != nil {
		w.failed++
	}
	delete(w.current, jobID)
	old := w.state
	if old != StateBusy || len(w.current) > 0 {
		w.mu.Unlock()
		return
	}
	w.state = StateIdle
	listeners := w.listeners
	w.mu.Unlock()
	notify(listeners, old, StateIdle)
}

// JobDead records that a job failed for good: its last attempt failed and
// it was dead-lettered (worker_jobs_dead_lettered_total).
func (w *Worker) JobDead() {
	w.mu.Lock()
	w.dead++
	w.mu.Unlock()
}

// setObserver installs the function that receives finished jobs' durations,
// replacing any earlier one.
func (w *Worker) setObserver(f durationObserver) { w.observer.Store(&f) }

// WorkerSnapshot is a consistent copy of a Worker's state and counters.
type WorkerSnapshot struct {
	ID            string
	State         State
	StartedAt     time.Time
	JobsProcessed uint64
	JobsFailed    uint64
	CurrentJobs   []string // ids of the jobs in progress, sorted
}

// Snapshot returns the state and counters as of one instant.
func (w *Worker) Snapshot() WorkerSnapshot {
	w.mu.Lock()
	s := WorkerSnapshot{
		ID:            w.id,
		State:         w.state,
		StartedAt:     w.startedAt,
		JobsProcessed: w.processed,
		JobsFailed:    w.failed,
	}
	if len(w.current) > 0 {
		s.CurrentJobs = make([]string, 0, len(w.current))
		for id := range w.current {
			s.CurrentJobs = append(s.CurrentJobs, id)
		}
	}
	w.mu.Unlock()
	slices.Sort(s.CurrentJobs)
	return s
}

// counters returns the job counters for a scrape without copying the
// current jobs.
func (w *Worker) counters() (state State, processed, failed, dead uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state, w.processed, w.failed, w.dead
}
