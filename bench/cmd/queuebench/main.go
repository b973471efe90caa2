// Command queuebench runs botfleet's job queue and asynq side by side on
// the same redis-server, in one run, and reports botfleet's figures as
// ratios against asynq's:
//
//   - drain: no-op jobs from a filled queue, 4 consumers of concurrency 1;
//   - latency: enqueue-to-start p50 and p99 at a steady 1,000 jobs/s;
//   - sleep: 1 ms jobs at a total concurrency of 16 (4 consumers x 4),
//     as a fraction of the ideal the handlers' own sleep sets;
//   - beats: 3,000 echo jobs on one botfleet worker: heartbeat beats and
//     Redis CPU per job (botfleet only).
//
// botfleet runs as real workers (worker.New(...).Run: heartbeat, metrics
// endpoint, job loop, JSON logs written to io.Discard), asynq as
// asynq.Servers with their defaults. Rounds alternate between the two.
//
//	go run ./cmd/queuebench                 # everything, 3 rounds
//	go run ./cmd/queuebench -only sleep -cpuprofile /tmp/sleep.prof
//
// The results are in docs/performance.md, "Side by side with asynq".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/bench/internal/cli"
	"github.com/botfleet/botfleet/bench/internal/redisproc"
)

func main() {
	var b bench
	cli.Run(b.parseFlags, b.run)
}

type bench struct {
	rounds     int
	drainJobs  int
	sleepJobs  int
	rate       int
	latencyFor time.Duration
	beatJobs   int
	beatRate   int
	only       string
	queue      string
	cpuprofile string
	addr       string
	rdb        *redis.Client
}

func (b *bench) parseFlags(args []string) error {
	fs := flag.NewFlagSet("queuebench", flag.ContinueOnError)
	fs.IntVar(&b.rounds, "rounds", 3, "rounds of each scenario, alternating the two queues")
	fs.IntVar(&b.drainJobs, "drain-jobs", 20000, "no-op jobs drained per round")
	fs.IntVar(&b.sleepJobs, "sleep-jobs", 10000, "1 ms jobs run per round")
	fs.IntVar(&b.rate, "rate", 1000, "jobs per second enqueued in the latency scenario")
	fs.DurationVar(&b.latencyFor, "latency-for", 5*time.Second, "how long jobs are enqueued at -rate")
	fs.IntVar(&b.beatJobs, "beat-jobs", 3000, "echo jobs run on one worker in the beats scenario")
	fs.IntVar(&b.beatRate, "beat-rate", 1200, "jobs per second enqueued in the beats scenario")
	fs.StringVar(&b.only, "only", "", "run one scenario only: drain, latency, sleep or beats")
	fs.StringVar(&b.queue, "queue", "", "run one queue only: botfleet or asynq (to profile it)")
	fs.StringVar(&b.cpuprofile, "cpuprofile", "", "write this process's CPU profile here")
	redisproc.AddrFlag(fs, &b.addr)
	return fs.Parse(args)
}

func (b *bench) run(ctx context.Context) error {
	addr, done, err := redisproc.Use(ctx, b.addr)
	if err != nil {
		return err
	}
	defer done()
	b.addr = addr
	b.rdb = redis.NewClient(&redis.Options{Addr: b.addr})
	defer b.rdb.Close()
	info, _ := b.rdb.Info(ctx, "server").Result()
	fmt.Printf("queuebench: redis %s at %s; %d CPUs, %s\n", field(info, "redis_version"), b.addr, runtime.NumCPU(), runtime.Version())
	if b.cpuprofile != "" {
		f, err := os.Create(b.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"drain", b.drain}, {"latency", b.latency}, {"sleep", b.sleep}, {"beats", b.beats},
	} {
		if b.only != "" && b.only != s.name {
			continue
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// queues are the two systems compared, botfleet first.
func (b *bench) queues() []queue {
	var qs []queue
	for _, q := range []queue{&botfleetQueue{addr: b.addr}, &asynqQueue{addr: b.addr}} {
		if b.queue == "" || b.queue == q.name() {
			qs = append(qs, q)
		}
	}
	return qs
}

// flush empties the database between rounds.
func (b *bench) flush(ctx context.Context) error { return b.rdb.FlushDB(ctx).Err() }

// eachRound runs one round of f per queue, b.rounds times, alternating,
// and returns each queue's results by name.
func (b *bench) eachRound(ctx context.Context, f func(context.Context, queue) (map[string]float64, error)) (map[string][]map[string]float64, error) {
	out := map[string][]map[string]float64{}
	for range b.rounds {
		for _, q := range b.queues() {
			if err := b.flush(ctx); err != nil {
				return nil, err
			}
			v, err := f(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q.name(), err)
			}
			out[q.name()] = append(out[q.name()], v)
		}
	}
	return out, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

func field(info, name string) string {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	return "?"
}
