package heartbeat

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// afters waits until the Beater's loop has asked the fake clock for n
// timers in all: one per beat, and one more for each TriggerSoon that
// waits for MinGap.
func afters(t *testing.T, c *fakeClock, n int) {
	t.Helper()
	waitFor(t, "the loop to wait", func() bool { return c.Afters() >= n })
	if got := c.Afters(); got != n {
		t.Fatalf("timers asked for: got %d, want %d", got, n)
	}
}

func TestTriggerSoonWaitsForMinGap(t *testing.T) {
	c := &counter{}
	f := newFixture(t, nil, c)
	f.start(t) // beat 1 at epoch; one timer, for the interval

	// Many flips within the gap: one beat, MinGap after the last.
	f.worker.set(func(s *Status) { s.State, s.CurrentJob, s.JobsProcessed = "BUSY", "job-1", 1 })
	for range 10 {
		f.b.TriggerSoon()
	}
	afters(t, f.clock, 2) // the interval's timer and the gap's
	f.worker.set(func(s *Status) { s.State, s.CurrentJob, s.JobsProcessed = "IDLE", "", 2 })
	f.clock.Advance(999 * time.Millisecond)
	if got := c.pipelines.Load(); got != 1 {
		t.Fatalf("beats 999ms after a TriggerSoon: got %d, want 1 (the first)", got)
	}
	f.clock.Advance(time.Millisecond)
	afters(t, f.clock, 3) // beat 2 done: a new interval timer
	if got := c.pipelines.Load(); got != 2 {
		t.Fatalf("beats 1s after a TriggerSoon: got %d, want 2", got)
	}
	// The beat reports the state and counters of its own moment.
	if h := f.hash(t, "worker-1"); h["state"] != "IDLE" || h["jobs_processed"] != "2" || h["timestamp"] != "1688851201.123" {
		t.Errorf("coalesced beat: got state %q, jobs_processed %q, timestamp %q; want IDLE, 2, 1688851201.123",
			h["state"], h["jobs_processed"], h["timestamp"])
	}

	// A TriggerSoon a gap after the last beat beats at once.
	f.clock.Advance(1500 * time.Millisecond)
	f.b.TriggerSoon()
	afters(t, f.clock, 4)
	if got := c.pipelines.Load(); got != 3 {
		t.Errorf("beats after a TriggerSoon 1.5s after the last beat: got %d, want 3", got)
	}
}

func TestTriggerDoesNotWaitForMinGap(t *testing.T) {
	c := &counter{}
	f := newFixture(t, nil, c)
	f.start(t)
	f.b.TriggerSoon()
	afters(t, f.clock, 2) // waiting for the gap
	f.worker.set(func(s *Status) { s.State = "STOPPING" })
	f.b.Trigger() // a lifecycle change: at once, and it serves the TriggerSoon
	afters(t, f.clock, 3)
	if h := f.hash(t, "worker-1"); h["state"] != "STOPPING" || h["timestamp"] != "1688851200.123" {
		t.Errorf("after Trigger: got state %q at %q; want STOPPING at once", h["state"], h["timestamp"])
	}
	f.clock.Advance(time.Second) // the gap's timer fires into a loop that no longer waits on it
	f.clock.Advance(time.Second)
	if got := c.pipelines.Load(); got != 2 {
		t.Errorf("beats: got %d, want 2 (the TriggerSoon was served by the Trigger's beat)", got)
	}
}

// TestTriggerSoonBound flips the worker as fast as goroutines can while
// the clock runs 10 s in 10 ms steps: at most one beat per MinGap.
func TestTriggerSoonBound(t *testing.T) {
	c := &counter{}
	f := newFixture(t, func(o *Options) { o.Interval = 5 * time.Second }, c)
	f.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				f.b.TriggerSoon()
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	for range 1000 {
		f.clock.Advance(10 * time.Millisecond)
		time.Sleep(20 * time.Microsecond) // let the loop take its turn
	}
	cancel()
	wg.Wait()
	if err := f.b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The first beat, at most one per second after it over 10 s (the
	// interval's beats, every 5 s, count within that bound as the gap
	// is measured from any beat), and the deregistration.
	if got := c.pipelines.Load(); got > 1+10+1 {
		t.Errorf("round trips in 10s of flips: got %d, want at most 12", got)
	}
	if got := c.maxFlight.Load(); got != 1 {
		t.Errorf("beats in flight at once: got %d, want 1", got)
	}
}

func TestMinGapOption(t *testing.T) {
	report := func() Status { return Status{Identity: Identity{WorkerID: "w"}} }
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	b, err := New(rdb, Options{Report: report})
	if err != nil || b.o.MinGap != time.Second {
		t.Errorf("default MinGap: got %v (%v), want 1s", b.o.MinGap, err)
	}
	if _, err := New(rdb, Options{Report: report, MinGap: -time.Second}); err == nil || !strings.Contains(err.Error(), "Options.MinGap") {
		t.Errorf("negative MinGap: got %v, want an error naming Options.MinGap", err)
	}
}

func TestStateIndex(t *testing.T) {
	c := &counter{}
	f := newFixture(t, func(o *Options) { o.StateIndex = true }, c)
	ctx := context.Background()
	f.start(t)
	check := func(wantMember string, wantDeadline float64) {
		t.Helper()
		members, err := f.admin.ZRange(ctx, StatesKey, 0, -1).Result()
		if err != nil || !slices.Equal(members, []string{wantMember}) {
			t.Errorf("%s: got %v (%v), want [%s]", StatesKey, members, err, wantMember)
		}
		if got, err := f.admin.ZScore(ctx, DeadlineKey, "worker-1").Result(); err != nil || got != wantDeadline {
			t.Errorf("%s score: got %f (%v), want %f", DeadlineKey, got, err, wantDeadline)
		}
	}
	check("IDLE:worker-1", 1688851245.123) // 1.5 x 30s after the beat

	f.worker.set(func(s *Status) { s.State = "BUSY" })
	f.clock.Advance(2 * time.Second)
	f.b.TriggerSoon()
	waitBeats(t, f.clock, 2)
	check("BUSY:worker-1", 1688851247.123)
	want := []string{"multi", "del", "hset", "expire", "zadd", "zadd", "zadd", "zrem", "xadd", "exec"}
	for i, names := range c.pipelineNames() {
		if !slices.Equal(names, want) {
			t.Errorf("beat %d sent %v, want %v", i+1, names, want)
		}
	}

	if err := f.b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{StatesKey, DeadlineKey, IndexKey} {
		if n := f.admin.ZCard(ctx, key).Val(); n != 0 {
			t.Errorf("ZCARD %s after Stop: got %d, want 0", key, n)
		}
	}
}

func TestWrite(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	s := stamped(f.worker)
	if err := Write(ctx, f.rdb, s, Options{StateIndex: true}); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(f.hash(t, "worker-1"))
	if err != nil || got.State != s.State || !got.Timestamp.Equal(s.Timestamp) {
		t.Errorf("Decode(hash written by Write): got %+v (%v)", got, err)
	}
	if ttl := f.admin.PTTL(ctx, KeyPrefix+"worker-1").Val(); ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Errorf("PTTL: got %v, want just under the default 3 x 30s", ttl)
	}
	if n := f.admin.ZCard(ctx, StatesKey).Val(); n != 1 {
		t.Errorf("ZCARD %s: got %d, want 1", StatesKey, n)
	}
	if err := Write(ctx, f.rdb, Status{}, Options{}); err == nil {
		t.Error("Write of a Status without WorkerID: got nil error")
	}
	if err := Write(ctx, f.rdb, s, Options{}); err != nil || errors.Is(err, ErrStopped) {
		t.Errorf("second Write: %v", err)
	}
}
