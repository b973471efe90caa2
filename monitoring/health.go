package monitoring

import (
	"context"
	"errors"
	"fmt"
	"github.com/botfleet/botfleet/internal/clock"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for MonitorOptions.
const (
	DefaultCheckInterval = 5 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
)

// Status is the overall verdict of /health.
type Status string

const (
	// StatusHealthy: every check passes and the worker is not stopping.
	StatusHealthy Status = "healthy"
	// StatusDegraded: a non-critical check fails; the process still works
	// (HTTP 200).
	StatusDegraded Status = "degraded"
	// StatusUnhealthy: a critical check fails or the worker is stopping or
	// stopped (HTTP 503).
	StatusUnhealthy Status = "unhealthy"
)

// The values of CheckResult.Status.
const (
	CheckOK      = "ok"
	CheckFailing = "failing"
)

// Check is a dependency probe run in the background by a Monitor, such as
// "is Redis reachable" or "is the last heartbeat recent".
type Check struct {
	Name string
	// Critical marks a dependency without which the process is useless: its
	// failure makes /health unhealthy rather than degraded.
	Critical bool
	// Run returns nil when the dependency is fine. It should return soon
	// after ctx is done; ctx carries MonitorOptions.CheckTimeout.
	Run func(ctx context.Context) error
}

// CheckResult is the cached outcome of a Check's latest run.
type CheckResult struct {
	Status    string  `json:"status"`
	Error     string  `json:"error,omitempty"`
	CheckedAt float64 `json:"checked_at"` // Unix seconds
	critical  bool
}

// Health is the /health document. Its field names are the design's, a
// contract with dashboards and scripts (go_version stands where the design
// had python_version).
type Health struct {
	Status        Status                 `json:"status"`
	State         string                 `json:"state,omitempty"`
	WorkerID      string                 `json:"worker_id,omitempty"`
	Service       string                 `json:"service,omitempty"`
	UptimeSeconds float64                `json:"uptime_seconds"`
	System        System                 `json:"system"`
	Resources     Resources              `json:"resources"`
	Checks        map[string]CheckResult `json:"checks,omitempty"`
	Timestamp     float64                `json:"timestamp"` // Unix seconds
}

// MonitorOptions configures a Monitor. Every field is optional.
type MonitorOptions struct {
	Service string  // reported as "service"
	Worker  *Worker // state, id and uptime; nil for a process without one
	Sampler *Sampler
	Checks  []Check
	// CheckInterval is how often the checks run; 0 means DefaultCheckInterval.
	CheckInterval time.Duration
	// CheckTimeout bounds each run of a check; 0 means DefaultCheckTimeout.
	CheckTimeout time.Duration
	// Clock is the time the results are stamped with and the background
	// loop waits on; nil means the wall clock.
	Clock  Clock
	Logger *slog.Logger // nil means slog.Default()
}

// Monitor runs the checks in the background and answers Health and Ready
// from their cached results, so a probe never waits on I/O. It is safe for
// concurrent use.
type Monitor struct {
	o       MonitorOptions
	started time.Time // uptime origin when there is no Worker
	system  System
	checks  []*checkRunner
	results atomic.Pointer[map[string]CheckResult]

	mu     sync.Mutex // guards cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

type checkRunner struct {
	Check
	running atomic.Bool // a run that overran its timeout has not returned yet
}

// NewMonitor returns a Monitor; call Start to run the checks.
func NewMonitor(o MonitorOptions) *Monitor {
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Monitor{o: o, started: o.Clock.Now()}
	if o.Sampler != nil {
		m.system = o.Sampler.System()
	} else {
		m.system = currentSystem()
	}
	for _, c := range o.Checks {
		m.checks = append(m.checks, &checkRunner{Check: c})
	}
	return m
}

// Start runs every check once before it returns, then again every
// CheckInterval in a background goroutine until ctx ends or Stop is called.
// Calling Start again while it runs does nothing.
func (m *Monitor) Start(ctx context.Context) {
	m.mu.Lock()
	if m.done != nil {
		m.mu.Unlock()
		return
	}
	ctx, m.cancel = context.WithCancel(ctx)
	done := make(chan struct{})
	m.done = done
	m.mu.Unlock()

	m.runChecks(ctx)
	go func() {
		defer close(done)
		for clock.Sleep(ctx, m.o.Clock, m.o.CheckInterval) {
			m.runChecks(ctx)
		}
	}()
}

// Stop ends the background checks and waits for the current round.
func (m *Monitor) Stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.cancel, m.done = nil, nil
	m.mu.Unlock()
	if done != nil {
		cancel()
		<-done
	}
}

// runChecks runs all checks concurrently, each bounded by CheckTimeout, and
// publishes their results together.
func (m *Monitor) runChecks(ctx context.Context) {
	if len(m.checks) == 0 {
		return
	}
	fresh := make([]CheckResult, len(m.checks))
	var wg sync.WaitGroup
	for i, c := range m.checks {
		wg.Go(func() { fresh[i] = m.runCheck(ctx, c) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down: the "failures" are our own cancellation
	}

	old := m.results.Load()
	next := make(map[string]CheckResult, len(m.checks))
	for i, c := range m.checks {
		r := fresh[i]
		next[c.Name] = r
		var prev CheckResult
		if old != nil {
			prev = (*old)[c.Name]
		}
		m.logChange(c.Name, prev, r)
	}
	m.results.Store(&next)
}

// runCheck runs c once. A Run that ignores its context is abandoned at the
// timeout and not started again until it returns; a panic is a failure.
func (m *Monitor) runCheck(ctx context.Context, c *checkRunner) CheckResult {
	r := CheckResult{Status: CheckOK, critical: c.Critical}
	var err error
	if !c.running.CompareAndSwap(false, true) {
		err = errors.New("previous run still in progress past its timeout")
	} else {
		ctx, cancel := context.WithTimeout(ctx, m.o.CheckTimeout)
		defer cancel()
		result := make(chan error, 1)
		go func() {
			defer c.running.Store(false)
			defer func() {
				if p := recover(); p != nil {
					result <- fmt.Errorf("panic: %v", p)
				}
			}()
			result <- c.Run(ctx)
		}()
		select {
		case err = <-result:
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("timed out after %s: %w", m.o.CheckTimeout, err)
			}
		case <-ctx.Done():
			err = fmt.Errorf("timed out after %s", m.o.CheckTimeout)
		}
	}
	r.CheckedAt = unixSeconds(m.o.Clock.Now())
	if err != nil {
		r.Status, r.Error = CheckFailing, err.Error()
	}
	return r
}

// logChange logs a check's failure when it starts and its recovery, not
// every failing run.
func (m *Monitor) logChange(name string, prev, cur CheckResult) {
	switch {
	case cur.Status == CheckFailing && prev.Status != CheckFailing:
		m.o.Logger.Warn("health check failing", "check", name, "critical", cur.critical, "error", cur.Error)
	case cur.Status == CheckOK && prev.Status == CheckFailing:
		m.o.Logger.Info("health check recovered", "check", name)
	}
}

// Health returns the health document from the cached check results and
// resource sample. It never waits on I/O.
func (m *Monitor) Health() Health {
	now := m.o.Clock.Now()
	h := Health{
		Status:    StatusHealthy,
		Service:   m.o.Service,
		System:    m.system,
		Timestamp: unixSeconds(now),
	}
	uptime := now.Sub(m.started)
	if w := m.o.Worker; w != nil {
		state := w.State()
		h.State, h.WorkerID = state.String(), w.ID()
		uptime = now.Sub(w.startedAt)
		if state == StateStopping || state == StateStopped {
			h.Status = StatusUnhealthy
		}
	}
	h.UptimeSeconds = round3(uptime.Seconds())
	if m.o.Sampler != nil {
		h.Resources = m.o.Sampler.Resources()
	}
	if rs := m.results.Load(); rs != nil {
		h.Checks = maps.Clone(*rs) // the caller may change its copy
		for _, r := range *rs {
			switch {
			case r.Status != CheckFailing:
			case r.critical:
				h.Status = StatusUnhealthy
			case h.Status == StatusHealthy:
				h.Status = StatusDegraded
			}
		}
	}
	return h
}

// Ready returns nil when the process can take work: the worker (if any) is
// IDLE or BUSY and no check is failing. Otherwise the error says why.
func (m *Monitor) Ready() error {
	var why []string
	if w := m.o.Worker; w != nil {
		if s := w.State(); s != StateIdle && s != StateBusy {
			why = append(why, "state is "+s.String())
		}
	}
	if rs := m.results.Load(); rs != nil {
		for _, name := range slices.Sorted(maps.Keys(*rs)) {
			if r := (*rs)[name]; r.Status == CheckFailing {
				why = append(why, fmt.Sprintf("check %s failing: %s", name, r.Error))
			}
		}
	}
	if len(why) > 0 {
		return errors.New("not ready: " + strings.Join(why, "; "))
	}
	return nil
}

func unixSeconds(t time.Time) float64 { return round3(float64(t.UnixNano()) / 1e9) }

// round3 keeps milliseconds, the precision of the design's timestamps.
func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
