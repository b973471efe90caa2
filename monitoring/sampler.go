package monitoring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// DefaultSampleInterval is how often a Sampler samples when NewSampler is
// given 0.
const DefaultSampleInterval = 5 * time.Second

// Sampler samples this process's resource use (resident memory, CPU,
// threads, open files) in the background and caches the result, so that
// /health, /metrics and the heartbeat read figures without ever waiting
// for /proc. It is safe for concurrent use.
type Sampler struct {
	interval time.Duration
	system   System
	logger   *slog.Logger // nil means slog.Default(), looked up when logging

	// read takes one raw reading, keeping prev's value for any figure it
	// cannot read; tests replace it.
	read func(ctx context.Context, prev reading) (reading, error)

	cur atomic.Pointer[sample]

	// Owned by Start and then by the sampling goroutine.
	proc     *process.Process
	memTotal uint64
	last     reading
	failing  bool

	mu     sync.Mutex // guards cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

// reading is one raw look at the process.
type reading struct {
	at         time.Time
	cpuSeconds float64 // user + system CPU time since the process started
	rss        uint64
	threads    int
	fds        int
}

// sample is what the Sampler caches: the figures as served, plus the raw
// ones the metrics want unrounded.
type sample struct {
	res        Resources
	rss        uint64
	cpuPercent float64
}

// NewSampler returns a Sampler that samples every interval (0 means
// DefaultSampleInterval) once started. Until Start, Resources is zero;
// System is filled at once.
func NewSampler(interval time.Duration) *Sampler {
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	s := &Sampler{interval: interval, system: currentSystem()}
	s.read = s.readProcess
	return s
}

// currentSystem describes this host and process.
func currentSystem() System {
	hostname, _ := os.Hostname()
	platform := runtime.GOOS + " " + runtime.GOARCH
	if release, err := host.KernelVersion(); err == nil && release != "" {
		platform = runtime.GOOS + "-" + kernelNumber(release) + " " + runtime.GOARCH
	}
	return System{Hostname: hostname, Platform: platform, GoVersion: runtime.Version(), PID: os.Getpid()}
}

// kernelNumber keeps the leading version number of a kernel release:
// "6.1.0-18-amd64" gives "6.1.0".
func kernelNumber(release string) string {
	for i, c := range release {
		if (c < '0' || c > '9') && c != '.' {
			if i == 0 {
				return release
			}
			return release[:i]
		}
	}
	return release
}

// Start takes the first sample before it returns, then samples every
// interval in a background goroutine until ctx ends or Stop is called.
// Calling Start again while it runs does nothing.
func (s *Sampler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return
	}
	s.init(ctx)
	s.sampleOnce(ctx)
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.loop(ctx, s.done)
}

// init opens the process handle and sets the baseline from which the
// first sample's CPU figure is measured: the process's start, so that the
// first figure is the average over its life so far.
func (s *Sampler) init(ctx context.Context) {
	if s.proc != nil {
		return // restarted after Stop: keep the last reading as the baseline
	}
	proc, err := process.NewProcessWithContext(ctx, int32(os.Getpid()))
	if err != nil {
		// Cannot happen for our own pid on a supported OS; the reads fail
		// and are reported by sampleOnce.
		proc = &process.Process{Pid: int32(os.Getpid())}
	}
	s.proc = proc
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		s.memTotal = vm.Total
	}
	if ms, err := proc.CreateTimeWithContext(ctx); err == nil {
		s.last.at = time.UnixMilli(ms)
	}
}

func (s *Sampler) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sampleOnce(ctx)
		}
	}
}

// Stop ends the background sampling and waits for it. The cached sample
// stays readable.
func (s *Sampler) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
}

// sampleOnce takes a reading and publishes it. A figure that cannot be
// read keeps its last good value; the first failure of a run of failures
// is logged, and so is the recovery.
func (s *Sampler) sampleOnce(ctx context.Context) {
	r, err := s.read(ctx, s.last)
	s.logOutcome(err)
	cpu := 0.0
	if prev := s.cur.Load(); prev != nil {
		cpu = prev.cpuPercent
	}
	if wall := r.at.Sub(s.last.at).Seconds(); !s.last.at.IsZero() && wall > 0 {
		cpu = max(0, 100*(r.cpuSeconds-s.last.cpuSeconds)/wall)
	}
	s.last = r
	memPercent := 0.0
	if s.memTotal > 0 {
		memPercent = 100 * float64(r.rss) / float64(s.memTotal)
	}
	s.cur.Store(&sample{
		res: Resources{
			MemoryMB:      round2(float64(r.rss) / (1 << 20)),
			MemoryPercent: round2(memPercent),
			CPUPercent:    round2(cpu),
			NumThreads:    r.threads,
			OpenFiles:     r.fds,
		},
		rss:        r.rss,
		cpuPercent: cpu,
	})
}

func (s *Sampler) logOutcome(err error) {
	logger := s.logger
	if logger == nil {
		logger = slog.Default()
	}
	switch {
	case err != nil && !s.failing:
		s.failing = true
		logger.Warn("resource sampling failing, keeping last good figures", "error", err)
	case err == nil && s.failing:
		s.failing = false
		logger.Info("resource sampling recovered")
	}
}

// readProcess reads the figures from the OS through gopsutil.
func (s *Sampler) readProcess(ctx context.Context, prev reading) (reading, error) {
	r := prev
	r.at = time.Now()
	var errs []error
	if t, err := s.proc.TimesWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cpu times: %w", err))
	} else {
		r.cpuSeconds = t.User + t.System
	}
	if m, err := s.proc.MemoryInfoWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("memory: %w", err))
	} else {
		r.rss = m.RSS
	}
	if n, err := s.proc.NumThreadsWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("threads: %w", err))
	} else {
		r.threads = int(n)
	}
	if n, err := s.proc.NumFDsWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("open files: %w", err))
	} else {
		r.fds = int(n)
	}
	return r, errors.Join(errs...)
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// Resources returns the latest sample (zero before Start). It never waits
// for a sample in progress.
func (s *Sampler) Resources() Resources {
	if c := s.cur.Load(); c != nil {
		return c.res
	}
	return Resources{}
}

// MemoryBytes returns the resident memory of the latest sample, in bytes.
func (s *Sampler) MemoryBytes() uint64 {
	if c := s.cur.Load(); c != nil {
		return c.rss
	}
	return 0
}

// System describes the host and process: hostname, platform (such as
// "linux-6.1.0 amd64"), Go version and pid.
func (s *Sampler) System() System { return s.system }

// load returns the cached sample, nil before the first.
func (s *Sampler) load() *sample { return s.cur.Load() }
