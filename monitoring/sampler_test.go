package monitoring

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging/logtest"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // a poll interval, not a wait for work to finish
	}
}

func TestSamplerPlausible(t *testing.T) {
	ctx := t.Context()
	s := NewSampler(time.Hour)
	s.Start(ctx)
	t.Cleanup(s.Stop)

	r := s.Resources()
	if r.MemoryMB < 1 || r.MemoryMB > 64<<10 {
		t.Errorf("MemoryMB = %v, want between 1 and 65536 for a test binary", r.MemoryMB)
	}
	if got, want := r.MemoryMB, float64(s.MemoryBytes())/(1<<20); math.Abs(got-want) > 0.01 {
		t.Errorf("MemoryMB = %v, want MemoryBytes()/2^20 = %v", got, want)
	}
	if r.MemoryPercent <= 0 || r.MemoryPercent >= 100 {
		t.Errorf("MemoryPercent = %v, want in (0, 100)", r.MemoryPercent)
	}
	if r.NumThreads < 2 { // the Go runtime always runs a few
		t.Errorf("NumThreads = %d, want at least 2", r.NumThreads)
	}
	if r.OpenFiles < 1 {
		t.Errorf("OpenFiles = %d, want at least 1", r.OpenFiles)
	}
	if r.CPUPercent < 0 || r.CPUPercent > 100*float64(runtime.NumCPU())+1 {
		t.Errorf("CPUPercent = %v, want within [0, 100 x %d cores]", r.CPUPercent, runtime.NumCPU())
	}
}

// TestSamplerTracksProcess checks the figures follow what the process does:
// more open files and CPU burnt show in the next sample.
func TestSamplerTracksProcess(t *testing.T) {
	s := NewSampler(time.Hour)
	s.init(t.Context()) // drive sampleOnce by hand: no background goroutine
	s.sampleOnce(t.Context())
	before := s.Resources()

	const extra = 64
	dir := t.TempDir()
	for i := range extra {
		f, err := os.Create(filepath.Join(dir, strings.Repeat("f", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
	}
	burnCPU(t, s, 0.05)
	s.sampleOnce(t.Context())
	after := s.Resources()
	// Other tests' connections may close meanwhile: allow for a few.
	if after.OpenFiles < before.OpenFiles+extra-16 {
		t.Errorf("OpenFiles went from %d to %d after opening %d files", before.OpenFiles, after.OpenFiles, extra)
	}
	if after.CPUPercent <= 0 {
		t.Errorf("CPUPercent = %v after burning CPU, want > 0", after.CPUPercent)
	}
}

var burnSink uint64

// burnCPU spins until the process's CPU time, as s reads it, has grown by
// seconds (the kernel counts in ticks of 10ms, so a fixed loop could fall
// between two).
func burnCPU(t *testing.T, s *Sampler, seconds float64) {
	t.Helper()
	start, err := s.read(t.Context(), reading{})
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	waitFor(t, "CPU time to grow", func() bool {
		for i := range 1_000_000 {
			x = x*6364136223846793005 + uint64(i)
		}
		r, err := s.read(t.Context(), reading{})
		return err == nil && r.cpuSeconds >= start.cpuSeconds+seconds
	})
	burnSink = x
}

func TestSamplerSystem(t *testing.T) {
	sys := NewSampler(0).System()
	host, _ := os.Hostname()
	if sys.Hostname != host || sys.PID != os.Getpid() || sys.GoVersion != runtime.Version() {
		t.Errorf("System() = %+v, want hostname %q, pid %d, go %s", sys, host, os.Getpid(), runtime.Version())
	}
	if !strings.HasPrefix(sys.Platform, runtime.GOOS+"-") || !strings.HasSuffix(sys.Platform, " "+runtime.GOARCH) {
		t.Errorf("Platform = %q, want %s-<kernel> %s", sys.Platform, runtime.GOOS, runtime.GOARCH)
	}
}

func TestKernelNumber(t *testing.T) {
	tests := []struct{ name, release, want string }{
		{"debian", "6.1.0-18-amd64", "6.1.0"},
		{"plain", "5.15.0", "5.15.0"},
		{"wsl", "5.15.153.1-microsoft-standard-WSL2", "5.15.153.1"},
		{"not a number", "unknown", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kernelNumber(tt.release); got != tt.want {
				t.Errorf("kernelNumber(%q) = %q, want %q", tt.release, got, tt.want)
			}
		})
	}
}

func TestSamplerCPUPercent(t *testing.T) {
	t0 := time.Date(2023, 7, 8, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		prev, cur reading
		want      float64
	}{
		{"half a core", reading{at: t0, cpuSeconds: 10}, reading{at: t0.Add(2 * time.Second), cpuSeconds: 11}, 50},
		{"two cores", reading{at: t0, cpuSeconds: 10}, reading{at: t0.Add(time.Second), cpuSeconds: 12}, 200},
		{"idle", reading{at: t0, cpuSeconds: 10}, reading{at: t0.Add(5 * time.Second), cpuSeconds: 10}, 0},
		{"no baseline", reading{}, reading{at: t0, cpuSeconds: 3}, 0},
		{"no wall time", reading{at: t0, cpuSeconds: 1}, reading{at: t0, cpuSeconds: 2}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSampler(0)
			s.read = func(context.Context, reading) (reading, error) { return tt.cur, nil }
			s.last = tt.prev
			s.sampleOnce(t.Context())
			if got := s.Resources().CPUPercent; got != tt.want {
				t.Errorf("CPUPercent = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSamplerFailureKeepsLastGood: a failing reading keeps the last good
// figures and is logged once per run of failures, plus once on recovery.
func TestSamplerFailureKeepsLastGood(t *testing.T) {
	rec := logtest.NewRecorder()
	s := NewSampler(0)
	s.logger = rec.Logger()
	s.memTotal = 1000 << 20
	t0 := time.Now()
	results := []error{nil, errors.New("read /proc: EMFILE"), errors.New("read /proc: EMFILE"), nil}
	var n int
	s.read = func(_ context.Context, prev reading) (reading, error) {
		err := results[n]
		n++
		if err != nil {
			prev.at = t0.Add(time.Duration(n) * time.Second)
			return prev, err
		}
		return reading{at: t0.Add(time.Duration(n) * time.Second), rss: uint64(100*n) << 20, threads: 5, fds: 7}, nil
	}
	want := []Resources{
		{MemoryMB: 100, MemoryPercent: 10, NumThreads: 5, OpenFiles: 7},
		{MemoryMB: 100, MemoryPercent: 10, NumThreads: 5, OpenFiles: 7},
		{MemoryMB: 100, MemoryPercent: 10, NumThreads: 5, OpenFiles: 7},
		{MemoryMB: 400, MemoryPercent: 40, NumThreads: 5, OpenFiles: 7},
	}
	for i := range results {
		s.sampleOnce(t.Context())
		if got := s.Resources(); got != want[i] {
			t.Errorf("sample %d: Resources() = %+v, want %+v", i, got, want[i])
		}
	}
	var levels []slog.Level
	for _, r := range rec.Records() {
		levels = append(levels, r.Level)
	}
	if !slices.Equal(levels, []slog.Level{slog.LevelWarn, slog.LevelInfo}) {
		t.Errorf("logged %q, want one warning for the failures and one line on recovery", rec.Messages())
	}
}

// TestSamplerResourcesNeverBlocks reads the cache while a sample is stuck
// in the middle of reading /proc.
func TestSamplerResourcesNeverBlocks(t *testing.T) {
	s := NewSampler(time.Millisecond)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	s.read = func(_ context.Context, prev reading) (reading, error) {
		if calls.Add(1) == 2 {
			close(entered)
			<-release
		}
		return reading{at: time.Now(), rss: 42 << 20, threads: 3, fds: 4}, nil
	}
	s.Start(t.Context())
	defer s.Stop()
	defer close(release)
	<-entered // the background sample is now in progress

	got := make(chan Resources)
	go func() {
		_ = s.MemoryBytes()
		got <- s.Resources()
	}()
	select {
	case r := <-got:
		if r.MemoryMB != 42 {
			t.Errorf("Resources() during a sample = %+v, want the cached first sample (42 MB)", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Resources() blocked while a sample was in progress")
	}
}

func TestSamplerLifecycle(t *testing.T) {
	s := NewSampler(time.Millisecond)
	s.Stop() // before Start: nothing to stop
	if got := s.Resources(); got != (Resources{}) {
		t.Errorf("Resources() before Start = %+v, want zero", got)
	}
	var calls atomic.Int32
	s.read = func(_ context.Context, prev reading) (reading, error) {
		calls.Add(1)
		prev.at = time.Now()
		return prev, nil
	}
	s.Start(t.Context())
	if got := calls.Load(); got < 1 {
		t.Fatalf("Start returned after %d samples, want the first taken synchronously", got)
	}
	s.Start(t.Context()) // running: no second loop
	waitFor(t, "background samples", func() bool { return calls.Load() >= 3 })
	s.Stop()
	s.Stop()
	stopped := calls.Load()
	s.Start(t.Context())
	if calls.Load() != stopped+1 {
		t.Errorf("restart took %d synchronous samples, want 1", calls.Load()-stopped)
	}
	s.Stop()

	// Cancelling Start's context stops the loop too.
	ctx, cancel := context.WithCancel(t.Context())
	s.Start(ctx)
	done := s.done
	cancel()
	<-done
	s.Stop()
}
