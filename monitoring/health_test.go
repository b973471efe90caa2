package monitoring

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging/logtest"
)

// fakeSampler returns a Sampler holding one sample of fixed figures, with
// no background goroutine.
func fakeSampler(t *testing.T) *Sampler {
	t.Helper()
	s := NewSampler(time.Hour)
	s.memTotal = 10 << 30
	s.read = func(context.Context, reading) (reading, error) {
		return reading{at: time.Now(), rss: 256 << 20, threads: 12, fds: 9}, nil
	}
	s.sampleOnce(t.Context())
	return s
}

// switchable is a check whose outcome a test sets.
type switchable struct{ err atomic.Pointer[error] }

func (c *switchable) set(err error) { c.err.Store(&err) }

func (c *switchable) run(context.Context) error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func TestHealthJSONFields(t *testing.T) {
	clock := newClock()
	w := NewWorker("worker-1", clock.Now)
	if err := w.SetState(StateIdle); err != nil {
		t.Fatal(err)
	}
	w.JobStarted("job-1", "scrape")
	redis := &switchable{}
	redis.set(errors.New("dial tcp 127.0.0.1:6379: connection refused"))
	m := NewMonitor(MonitorOptions{
		Service: "worker", Worker: w, Sampler: fakeSampler(t), Clock: clock,
		Checks: []Check{{Name: "redis", Run: redis.run}},
		Logger: logtest.NewRecorder().Logger(),
	})
	m.Start(t.Context())
	t.Cleanup(m.Stop)
	clock.Advance(3600*time.Second + 500*time.Millisecond)

	body, err := json.Marshal(m.Health())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string { return slices.Sorted(maps.Keys(v.(map[string]any))) }
	wantKeys := map[string][]string{
		"":          {"checks", "resources", "service", "state", "status", "system", "timestamp", "uptime_seconds", "worker_id"},
		"system":    {"go_version", "hostname", "pid", "platform"},
		"resources": {"cpu_percent", "memory_mb", "memory_percent", "num_threads", "open_files"},
		"checks":    {"redis"},
	}
	for field, want := range wantKeys {
		v := any(doc)
		if field != "" {
			v = doc[field]
		}
		if got := keys(v); !slices.Equal(got, want) {
			t.Errorf("keys of %q = %q, want %q", field, got, want)
		}
	}
	redisDoc := doc["checks"].(map[string]any)["redis"].(map[string]any)
	if got := keys(redisDoc); !slices.Equal(got, []string{"checked_at", "error", "status"}) {
		t.Errorf("keys of checks.redis = %q, want checked_at, error, status", got)
	}
	wantValues := map[string]any{
		"status": "degraded", "state": "BUSY", "worker_id": "worker-1", "service": "worker",
		"uptime_seconds": 3600.5, "timestamp": float64(clock.Now().UnixMilli()) / 1000,
	}
	for k, want := range wantValues {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	if got := doc["resources"].(map[string]any)["memory_mb"]; got != 256.0 {
		t.Errorf("resources.memory_mb = %v, want 256", got)
	}
	if redisDoc["status"] != "failing" || !strings.Contains(redisDoc["error"].(string), "connection refused") {
		t.Errorf("checks.redis = %v, want failing with the error", redisDoc)
	}
}

func TestHealthWithoutWorker(t *testing.T) {
	clock := newClock()
	m := NewMonitor(MonitorOptions{Service: "bot", Clock: clock})
	clock.Advance(2 * time.Second)
	h := m.Health()
	if h.Status != StatusHealthy || h.State != "" || h.WorkerID != "" || h.UptimeSeconds != 2 {
		t.Errorf("Health() = %+v, want healthy, no state or worker id, uptime 2", h)
	}
	body, _ := json.Marshal(h)
	if strings.Contains(string(body), "worker_id") {
		t.Errorf("JSON %s has worker_id, want it omitted when empty", body)
	}
	if h.System.PID == 0 {
		t.Errorf("System = %+v, want it filled without a Sampler", h.System)
	}
	if err := m.Ready(); err != nil {
		t.Errorf("Ready() = %v, want nil with no worker and no checks", err)
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name      string
		state     State
		checkErr  error
		critical  bool
		wantError string // "" means ready
	}{
		{name: "idle", state: StateIdle},
		{name: "busy", state: StateBusy},
		{name: "starting", state: StateStarting, wantError: "state is STARTING"},
		{name: "stopping", state: StateStopping, wantError: "state is STOPPING"},
		{name: "stopped", state: StateStopped, wantError: "state is STOPPED"},
		{name: "non-critical check failing", state: StateIdle, checkErr: errors.New("stale"), wantError: "check dep failing: stale"},
		{name: "critical check failing", state: StateBusy, checkErr: errors.New("down"), critical: true, wantError: "check dep failing: down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := workerIn(t, tt.state)
			dep := &switchable{}
			dep.set(tt.checkErr)
			m := NewMonitor(MonitorOptions{
				Worker: w, Checks: []Check{{Name: "dep", Critical: tt.critical, Run: dep.run}},
				Logger: logtest.NewRecorder().Logger(),
			})
			m.Start(t.Context())
			defer m.Stop()
			err := m.Ready()
			switch {
			case tt.wantError == "" && err != nil:
				t.Errorf("Ready() = %v, want nil", err)
			case tt.wantError != "" && (err == nil || !strings.Contains(err.Error(), tt.wantError)):
				t.Errorf("Ready() = %v, want an error containing %q", err, tt.wantError)
			}
		})
	}
}

func TestHealthStatusRules(t *testing.T) {
	type check struct {
		critical bool
		err      error
	}
	down := errors.New("down")
	tests := []struct {
		name   string
		state  State
		checks []check
		want   Status
	}{
		{"idle, no checks", StateIdle, nil, StatusHealthy},
		{"starting", StateStarting, nil, StatusHealthy},
		{"busy, checks pass", StateBusy, []check{{true, nil}, {false, nil}}, StatusHealthy},
		{"non-critical failing", StateIdle, []check{{true, nil}, {false, down}}, StatusDegraded},
		{"critical failing", StateIdle, []check{{true, down}, {false, nil}}, StatusUnhealthy},
		{"both failing", StateBusy, []check{{false, down}, {true, down}}, StatusUnhealthy},
		{"stopping", StateStopping, []check{{false, nil}}, StatusUnhealthy},
		{"stopped", StateStopped, nil, StatusUnhealthy},
		{"stopping and degraded", StateStopping, []check{{false, down}}, StatusUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checks []Check
			for i, c := range tt.checks {
				err := c.err
				checks = append(checks, Check{
					Name: string(rune('a' + i)), Critical: c.critical,
					Run: func(context.Context) error { return err },
				})
			}
			m := NewMonitor(MonitorOptions{Worker: workerIn(t, tt.state), Checks: checks, Logger: logtest.NewRecorder().Logger()})
			m.Start(t.Context())
			defer m.Stop()
			if got := m.Health().Status; got != tt.want {
				t.Errorf("status = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestChecksBackground: results refresh every interval, a failure is
// logged when it starts and when it ends, not at every run.
func TestChecksBackground(t *testing.T) {
	rec := logtest.NewRecorder()
	dep := &switchable{}
	var runs atomic.Int32
	m := NewMonitor(MonitorOptions{
		Worker:        workerIn(t, StateIdle),
		CheckInterval: time.Millisecond,
		Logger:        rec.Logger(),
		Checks: []Check{{Name: "redis", Critical: true, Run: func(ctx context.Context) error {
			runs.Add(1)
			return dep.run(ctx)
		}}},
	})
	m.Start(t.Context())
	defer m.Stop()
	if got := runs.Load(); got != 1 {
		t.Fatalf("Start returned after %d runs, want 1 synchronous run", got)
	}
	if got := m.Health().Status; got != StatusHealthy {
		t.Fatalf("status = %s, want healthy", got)
	}
	dep.set(errors.New("connection refused"))
	waitFor(t, "unhealthy", func() bool { return m.Health().Status == StatusUnhealthy })
	n := runs.Load()
	waitFor(t, "more failing runs", func() bool { return runs.Load() >= n+3 })
	dep.set(nil)
	waitFor(t, "healthy again", func() bool { return m.Health().Status == StatusHealthy })
	m.Stop()

	got := rec.Messages()
	want := []string{"health check failing", "health check recovered"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

func TestCheckTimeoutAndPanic(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	clock := newClock()
	m := NewMonitor(MonitorOptions{
		CheckTimeout:  250 * time.Millisecond,
		CheckInterval: time.Hour,
		Clock:         clock,
		Logger:        logtest.NewRecorder().Logger(),
		Checks: []Check{
			{Name: "stuck", Run: func(context.Context) error { <-release; return nil }}, // ignores ctx
			{Name: "slow", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
			{Name: "panics", Run: func(context.Context) error { panic("oops") }},
		},
	})
	m.Start(t.Context())
	defer m.Stop()
	h := m.Health()
	wantErr := map[string]string{"stuck": "timed out after 250ms", "slow": "timed out after 250ms", "panics": "panic: oops"}
	for name, want := range wantErr {
		r := h.Checks[name]
		if r.Status != CheckFailing || !strings.Contains(r.Error, want) {
			t.Errorf("check %s = %+v, want failing with %q", name, r, want)
		}
		if r.CheckedAt != float64(clock.Now().Unix()) {
			t.Errorf("check %s checked_at = %v, want %v", name, r.CheckedAt, clock.Now().Unix())
		}
	}
	// The stuck run has not returned: the next round does not start another.
	m.runChecks(t.Context())
	if r := m.Health().Checks["stuck"]; !strings.Contains(r.Error, "still in progress") {
		t.Errorf("stuck check on the next round = %+v, want the previous run reported still in progress", r)
	}
}

// TestChecksRunOnTheClock: the background loop waits on the Monitor's
// clock, so a test advances time instead of sleeping through intervals.
func TestChecksRunOnTheClock(t *testing.T) {
	clock := newClock()
	runs := make(chan struct{}, 10)
	m := NewMonitor(MonitorOptions{CheckInterval: time.Minute, Clock: clock, Logger: logtest.NewRecorder().Logger(),
		Checks: []Check{{Name: "count", Run: func(context.Context) error { runs <- struct{}{}; return nil }}}})
	m.Start(t.Context())
	defer m.Stop()
	<-runs // Start's own round
	for i := range 3 {
		for !clockHasWaiter(clock) {
			time.Sleep(time.Millisecond) // the loop has not reached its wait yet
		}
		clock.Advance(time.Minute)
		select {
		case <-runs:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no check ran after the clock advanced one interval", i+2)
		}
	}
}

func clockHasWaiter(c *fixedClock) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters) > 0
}
