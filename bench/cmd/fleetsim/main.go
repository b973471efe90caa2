// Command fleetsim simulates a fleet of workers beating into Redis in the
// wire format (heartbeat.Write: the Beater's own MULTI/EXEC, derived keys
// included), each at its real interval, and measures what the fleet view
// costs at that size: the summary, a page of 100, the full listing, and
// Redis's CPU while the fleet beats.
//
//	go run ./cmd/fleetsim -workers 100000 -interval 30s   # summary and pages at 100,000
//	go run ./cmd/fleetsim -workers 10000 -interval 1s     # Redis CPU, full listing at 10,000
//
// It starts a redis-server of its own unless -redis names one. The results
// are in docs/performance.md, "A fleet of 100,000".
package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/bench/internal/cli"
	"github.com/botfleet/botfleet/bench/internal/redisproc"
	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
)

func main() {
	var s sim
	cli.Run(s.parseFlags, s.run)
}

// sim is one simulation: its flags, then its fleet.
type sim struct {
	workers   int
	interval  time.Duration
	duration  time.Duration
	writers   int
	samples   int
	list      bool
	redisAddr string

	beats  atomic.Int64
	failed atomic.Int64
	base   []heartbeat.Status // each worker's identity and constant fields
}

func (s *sim) parseFlags(args []string) error {
	fs := flag.NewFlagSet("fleetsim", flag.ContinueOnError)
	fs.IntVar(&s.workers, "workers", 100000, "workers in the fleet")
	fs.DurationVar(&s.interval, "interval", 30*time.Second, "each worker's heartbeat interval")
	fs.DurationVar(&s.duration, "duration", 30*time.Second, "how long the fleet beats while it is measured")
	fs.IntVar(&s.writers, "writers", 64, "connections the beats are written through")
	fs.IntVar(&s.samples, "samples", 200, "reads of each kind measured")
	fs.BoolVar(&s.list, "list", false, "also time the full listing (default: when -workers is at most 20000)")
	redisproc.AddrFlag(fs, &s.redisAddr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.workers <= 0 || s.interval < heartbeat.MinInterval || s.writers <= 0 || s.samples <= 0 {
		return fmt.Errorf("bad flags")
	}
	s.list = s.list || s.workers <= 20000
	return nil
}

func (s *sim) run(ctx context.Context) error {
	addr, done, err := redisproc.Use(ctx, s.redisAddr)
	if err != nil {
		return err
	}
	defer done()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: s.writers + 8})
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return err
	}
	fmt.Printf("fleetsim: %d workers beating every %v into %s; %d CPUs, %s\n", s.workers, s.interval, addr, runtime.NumCPU(), runtime.Version())
	s.base = make([]heartbeat.Status, s.workers)
	for i := range s.base {
		s.base[i] = baseStatus(i, s.interval)
	}

	start := time.Now()
	if err := s.fill(ctx, rdb); err != nil {
		return err
	}
	fmt.Printf("registered %d workers in %v\n", s.workers, time.Since(start).Round(time.Millisecond))

	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for g := range s.writers {
		wg.Go(func() { s.beat(bctx, rdb, g) })
	}
	defer func() { cancel(); wg.Wait() }()
	// Let the beats settle into their rhythm, then measure what they cost
	// Redis, with no reader.
	if !sleep(ctx, min(s.interval, 5*time.Second)) {
		return ctx.Err()
	}
	cpu0, _ := redisproc.CPU(ctx, rdb)
	beats0, t0 := s.beats.Load(), time.Now()
	if !sleep(ctx, s.duration) {
		return ctx.Err()
	}
	cpu1, _ := redisproc.CPU(ctx, rdb)
	beats, elapsed := s.beats.Load()-beats0, time.Since(t0)
	perBeat := (cpu1 - cpu0) / time.Duration(max(beats, 1))
	want := float64(s.workers) / s.interval.Seconds()
	fmt.Printf("beating for %v: %.0f beats/s of the %.0f wanted (%d failed); Redis CPU %.1f%% of one core, %.1f µs per beat: %.1f%% of a core at %.0f beats/s\n",
		elapsed.Round(time.Millisecond), float64(beats)/elapsed.Seconds(), want, s.failed.Load(),
		100*float64(cpu1-cpu0)/float64(elapsed), float64(perBeat)/1e3, 100*want*perBeat.Seconds(), want)
	return s.measure(ctx, rdb)
}

// baseStatus is what worker i says about itself that does not change: a
// worker of the wire format's example.
func baseStatus(i int, interval time.Duration) heartbeat.Status {
	host := fmt.Sprintf("host-%04d", i/25)
	return heartbeat.Status{
		Identity: heartbeat.Identity{WorkerID: fmt.Sprintf("sim-%06d", i), Service: "worker",
			Hostname: host, ContainerID: "a1b2c3d4e5f6", DeploymentEnv: "production", Region: "us-west-1", Version: "v1.4.2"},
		Interval:   interval,
		MetricsURL: fmt.Sprintf("http://10.%d.%d.%d:9200/metrics", i/65536, i/256%256, i%256),
		Resources:  heartbeat.Resources{MemoryMB: 245.7, MemoryPercent: 2.4, CPUPercent: 15.3, NumThreads: 12, OpenFiles: 9},
		System:     heartbeat.System{Hostname: host, Platform: "linux-6.1.0-amd64", GoVersion: "go1.26.0", PID: 4242},
	}
}

// status is worker i's n-th beat at t, its state flipping from beat to
// beat; one worker in a thousand stays STARTING.
func (s *sim) status(i int, t time.Time, n int) heartbeat.Status {
	st := s.base[i]
	st.State, st.Timestamp, st.StartedAt = "IDLE", t, t.Add(-time.Hour)
	st.JobsProcessed, st.JobsFailed = uint64(n*3), uint64(n/10)
	switch {
	case i%1000 == 7:
		st.State = "STARTING"
	case (i+n)%3 == 0:
		st.State, st.CurrentJob = "BUSY", "echo.k3f9x2m7q1za"
	}
	return st
}

// fill registers every worker at once, in plain pipelines of beats (not
// each in its own transaction: a load, not a measure).
func (s *sim) fill(ctx context.Context, rdb *redis.Client) error {
	const chunk = 500
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	next := atomic.Int64{}
	for range 4 {
		wg.Go(func() {
			for {
				from := int(next.Add(chunk)) - chunk
				if from >= s.workers {
					return
				}
				pipe := rdb.Pipeline()
				now := time.Now()
				for i := from; i < min(from+chunk, s.workers); i++ {
					heartbeat.QueueBeat(ctx, pipe, s.status(i, now, 0), heartbeat.Options{StateIndex: true})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("register the fleet: %w", err)
	default:
		return nil
	}
}

// beat runs the beats of the workers g, g + writers, ...: each at its own
// phase of the interval, one MULTI/EXEC round trip each, as each worker's
// Beater would send it.
func (s *sim) beat(ctx context.Context, rdb *redis.Client, g int) {
	start := time.Now()
	o := heartbeat.Options{StateIndex: true}
	for n := 1; ; n++ {
		for i := g; i < s.workers; i += s.writers {
			due := start.Add(time.Duration(n-1)*s.interval + time.Duration(int64(s.interval)*int64(i)/int64(s.workers)))
			if d := time.Until(due); d > 0 && !sleep(ctx, d) {
				return
			}
			if ctx.Err() != nil {
				return
			}
			if err := heartbeat.Write(ctx, rdb, s.status(i, time.Now(), n), o); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.failed.Add(1)
				continue
			}
			s.beats.Add(1)
		}
	}
}

// measure times the fleet view's reads while the fleet beats.
func (s *sim) measure(ctx context.Context, rdb *redis.Client) error {
	r := fleet.NewReader(rdb, fleet.Options{})
	sum, _, err := r.Summary(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("summary: %d workers, %d alive (%v), %d stale, %d invalid\n", sum.Total, sum.Alive, sum.ByState, sum.Stale, sum.Invalid)
	mid := fmt.Sprintf("sim-%06d", s.workers/2)
	reads := []struct {
		name string
		read func() (int, error)
	}{
		{"Summary", func() (int, error) { s, _, err := r.Summary(ctx); return s.Total, err }},
		{"Page, first 100", page(ctx, r, fleet.Query{Limit: 100})},
		{"Page, 100 from the middle (cursor)", page(ctx, r, fleet.Query{Limit: 100, Cursor: mid})},
		{"Page, 100 BUSY", page(ctx, r, fleet.Query{Limit: 100, State: "BUSY"})},
		{"Page, 100 STARTING (1 in 1,000)", page(ctx, r, fleet.Query{Limit: 100, State: "STARTING"})},
		{"Page, 100 by id prefix", page(ctx, r, fleet.Query{Limit: 100, Prefix: mid[:len(mid)-2]})},
	}
	if s.list {
		reads = append(reads, struct {
			name string
			read func() (int, error)
		}{"List, every worker (warm reader)", func() (int, error) { f, err := r.List(ctx); return len(f.Workers), err }})
	}
	fmt.Printf("\n| read | workers | p50 ms | p99 ms | samples |\n|---|---:|---:|---:|---:|\n")
	for _, rd := range reads {
		n := s.samples
		if rd.name[:4] == "List" {
			n = max(10, s.samples/10)
		}
		var ds []time.Duration
		got := 0
		for range n {
			t := time.Now()
			k, err := rd.read()
			if err != nil {
				return fmt.Errorf("%s: %w", rd.name, err)
			}
			ds = append(ds, time.Since(t))
			got = k
		}
		fmt.Printf("| %s | %d | %s | %s | %d |\n", rd.name, got, redisproc.Ms(redisproc.Quantile(ds, 0.5)), redisproc.Ms(redisproc.Quantile(ds, 0.99)), n)
	}
	fmt.Println()
	return nil
}

func page(ctx context.Context, r *fleet.Reader, q fleet.Query) func() (int, error) {
	return func() (int, error) {
		p, err := r.Page(ctx, q)
		return len(p.Workers), err
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
