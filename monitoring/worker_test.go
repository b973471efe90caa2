package monitoring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixedClock returns a clock reading t until it is advanced.
type fixedClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []waiter
}

func newClock() *fixedClock {
	return &fixedClock{t: time.Date(2023, 7, 8, 21, 20, 0, 0, time.UTC)}
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// After fires once the clock is advanced d or more past now.
func (c *fixedClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), ch: ch})
	return ch
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.t
	}
	c.waiters = kept
	c.mu.Unlock()
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// workerIn returns a worker driven through valid transitions to s.
func workerIn(t *testing.T, s State) *Worker {
	t.Helper()
	w := NewWorker("worker-1", nil)
	path := map[State][]State{
		StateStarting: nil,
		StateIdle:     {StateIdle},
		StateBusy:     {StateIdle, StateBusy},
		StateStopping: {StateStopping},
		StateStopped:  {StateStopping, StateStopped},
	}[s]
	for _, p := range path {
		if err := w.SetState(p); err != nil {
			t.Fatalf("SetState(%s): %v", p, err)
		}
	}
	return w
}

func TestWorkerTransitions(t *testing.T) {
	states := []State{StateStarting, StateIdle, StateBusy, StateStopping, StateStopped}
	valid := map[[2]State]bool{
		{StateStarting, StateIdle}:     true,
		{StateStarting, StateStopping}: true,
		{StateIdle, StateBusy}:         true,
		{StateBusy, StateIdle}:         true,
		{StateIdle, StateStopping}:     true,
		{StateBusy, StateStopping}:     true,
		{StateStopping, StateStopped}:  true,
	}
	type tc struct {
		name     string
		from, to State
		wantErr  bool
		wantCall bool
	}
	var tests []tc
	for _, from := range states {
		for _, to := range states {
			same := from == to
			tests = append(tests, tc{
				name: from.String() + "->" + to.String(), from: from, to: to,
				wantErr: !same && !valid[[2]State{from, to}], wantCall: !same && valid[[2]State{from, to}],
			})
		}
	}
	tests = append(tests, tc{name: "IDLE->State(9)", from: StateIdle, to: State(9), wantErr: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := workerIn(t, tt.from)
			var calls [][2]State
			w.OnChange(func(old, new State) { calls = append(calls, [2]State{old, new}) })
			err := w.SetState(tt.to)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("SetState(%s) from %s: err = %v, want error %v", tt.to, tt.from, err, tt.wantErr)
			}
			wantState := tt.to
			if tt.wantErr {
				wantState = tt.from
				if !errors.Is(err, ErrInvalidTransition) {
					t.Errorf("error %v does not wrap ErrInvalidTransition", err)
				}
				if !strings.Contains(err.Error(), tt.from.String()) || !strings.Contains(err.Error(), tt.to.String()) {
					t.Errorf("error %q does not name both %s and %s", err, tt.from, tt.to)
				}
			}
			if got := w.State(); got != wantState {
				t.Errorf("state = %s, want %s", got, wantState)
			}
			var wantCalls [][2]State
			if tt.wantCall {
				wantCalls = [][2]State{{tt.from, tt.to}}
			}
			if !slices.Equal(calls, wantCalls) {
				t.Errorf("OnChange calls = %v, want %v", calls, wantCalls)
			}
		})
	}
}

func TestNewWorker(t *testing.T) {
	clock := newClock()
	w := NewWorker("worker-7", clock.Now)
	got := w.Snapshot()
	want := WorkerSnapshot{ID: "worker-7", State: StateStarting, StartedAt: clock.Now()}
	if got.ID != want.ID || got.State != want.State || !got.StartedAt.Equal(want.StartedAt) ||
		got.JobsProcessed != 0 || got.JobsFailed != 0 || got.CurrentJobs != nil {
		t.Errorf("Snapshot() = %+v, want %+v", got, want)
	}
	if w.ID() != "worker-7" {
		t.Errorf("ID() = %q, want worker-7", w.ID())
	}
	clock.Advance(90 * time.Second)
	if got := w.uptime(); got != 90*time.Second {
		t.Errorf("uptime() = %v, want 1m30s", got)
	}
}

func TestWorkerJobs(t *testing.T) {
	w := workerIn(t, StateIdle)
	var calls []string
	w.OnChange(func(old, new State) {
		// Listeners run outside the lock: reading the worker must not deadlock.
		calls = append(calls, fmt.Sprintf("%s->%s jobs=%v", old, new, w.Snapshot().CurrentJobs))
	})
	w.JobStarted("job-b", "scrape")
	w.JobStarted("job-a", "render")
	if got := w.Snapshot().CurrentJobs; !slices.Equal(got, []string{"job-a", "job-b"}) {
		t.Errorf("CurrentJobs = %v, want [job-a job-b] (sorted)", got)
	}
	w.JobFinished("job-b", "scrape", time.Second, nil)
	if got := w.State(); got != StateBusy {
		t.Errorf("state with one job left = %s, want BUSY", got)
	}
	w.JobFinished("job-a", "render", time.Second, errors.New("boom"))
	got := w.Snapshot()
	if got.State != StateIdle || got.JobsProcessed != 2 || got.JobsFailed != 1 || len(got.CurrentJobs) != 0 {
		t.Errorf("after both jobs: %+v, want IDLE, processed 2, failed 1, no current jobs", got)
	}
	want := []string{"IDLE->BUSY jobs=[job-b]", "BUSY->IDLE jobs=[]"}
	if !slices.Equal(calls, want) {
		t.Errorf("OnChange calls = %q, want %q", calls, want)
	}
}

func TestWorkerJobsWhileStopping(t *testing.T) {
	w := workerIn(t, StateIdle)
	w.JobStarted("job-1", "scrape")
	if err := w.SetState(StateStopping); err != nil {
		t.Fatal(err)
	}
	w.JobFinished("job-1", "scrape", time.Millisecond, nil)
	if got := w.State(); got != StateStopping {
		t.Errorf("state after the last job while stopping = %s, want STOPPING", got)
	}
	if got := w.Snapshot().JobsProcessed; got != 1 {
		t.Errorf("JobsProcessed = %d, want 1", got)
	}
}

func TestWorkerConcurrentJobs(t *testing.T) {
	const goroutines, jobs = 8, 200
	w := workerIn(t, StateIdle)
	var mu sync.Mutex
	changes := map[[2]State]int{}
	w.OnChange(func(old, new State) {
		mu.Lock()
		changes[[2]State{old, new}]++
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for j := range jobs {
				id := fmt.Sprintf("job-%d-%d", g, j)
				w.JobStarted(id, "scrape")
				_ = w.Snapshot()
				var err error
				if j%4 == 0 {
					err = errors.New("failed")
				}
				w.JobFinished(id, "scrape", time.Millisecond, err)
			}
		})
	}
	wg.Wait()
	got := w.Snapshot()
	if got.JobsProcessed != goroutines*jobs || got.JobsFailed != goroutines*jobs/4 {
		t.Errorf("processed, failed = %d, %d; want %d, %d", got.JobsProcessed, got.JobsFailed, goroutines*jobs, goroutines*jobs/4)
	}
	if got.State != StateIdle || len(got.CurrentJobs) != 0 {
		t.Errorf("final state %s with jobs %v, want IDLE with none", got.State, got.CurrentJobs)
	}
	mu.Lock()
	defer mu.Unlock()
	up, down := changes[[2]State{StateIdle, StateBusy}], changes[[2]State{StateBusy, StateIdle}]
	if up == 0 || up != down || len(changes) != 2 {
		t.Errorf("OnChange saw %v; want IDLE->BUSY and BUSY->IDLE equally often and nothing else", changes)
	}
}
