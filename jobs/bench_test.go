package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
)

// BenchmarkThroughput measures no-op (echo) jobs per second through a real
// local redis-server: b.N jobs are queued first, then 1 or 4 consumers
// (each its own client, as separate worker processes would have) drain
// the queue, each job's outcome recorded. "hooks=monitoring" adds OnStart
// and OnFinish hooks doing what the worker's metrics do: a busy gauge, a
// counter and a duration histogram.
func BenchmarkThroughput(b *testing.B) {
	for _, consumers := range []int{1, 4} {
		for _, concurrency := range []int{1, 4} {
			for _, hooks := range []string{"none", "monitoring"} {
				name := fmt.Sprintf("consumers=%d/concurrency=%d/hooks=%s", consumers, concurrency, hooks)
				b.Run(name, func(b *testing.B) { benchThroughput(b, consumers, concurrency, hooks == "monitoring") })
			}
		}
	}
}

func benchThroughput(b *testing.B, consumers, concurrency int, hooks bool) {
	srv := redistestStart(b)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv})
	defer rdb.Close()
	prefill(b, rdb, b.N)

	var handled atomic.Int64
	allHandled := make(chan struct{})
	mux := NewMux()
	mux.HandleFunc(TypeEcho, func(ctx context.Context, job *Job) (any, error) {
		if handled.Add(1) == int64(b.N) {
			close(allHandled)
		}
		return echo(ctx, job)
	})
	o := ConsumerOptions{Concurrency: concurrency, Logger: slog.New(slog.DiscardHandler)}
	if hooks {
		o.OnStart, o.OnFinish = monitoringHooks()
	}

	cpu0 := cpuTime()
	b.ResetTimer()
	cs := make([]*Consumer, consumers)
	runs := make(chan error, consumers)
	for i := range cs {
		client := redis.NewClient(&redis.Options{Addr: srv})
		defer client.Close()
		cs[i] = NewConsumer(client, "", fmt.Sprintf("worker-%d", i+1), mux, o)
		go func() { runs <- cs[i].Run(ctx) }()
	}
	<-allHandled
	for rdb.XLen(ctx, "jobs:default").Val() > 0 { // the last outcomes are being recorded
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/job")
	for _, c := range cs {
		if err := c.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
	}
	for range cs {
		<-runs
	}
}

// prefill queues n echo jobs, as Enqueue does, in pipelines of 1000.
func prefill(b *testing.B, rdb *redis.Client, n int) {
	b.Helper()
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{MaxBacklog: int64(n) + 1000})
	payload := []byte(`{"ping":1}`)
	if err := enqueueScript.Load(ctx, rdb).Err(); err != nil {
		b.Fatalf("prefill: %v", err)
	}
	for n > 0 {
		batch := min(n, 1000)
		n -= batch
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range batch {
				now := time.Now()
				keys, args := q.enqueueArgs(Info{ID: NewID(TypeEcho), Type: TypeEcho, Queue: q.name, Status: StatusQueued,
					MaxAttempts: q.o.MaxAttempts, CreatedAt: now, UpdatedAt: now}, payload, "")
				enqueueScript.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		if err != nil {
			b.Fatalf("prefill: %v", err)
		}
	}
}

// redistestStart starts a redis-server for a benchmark and returns its address.
func redistestStart(b *testing.B) string {
	b.Helper()
	return redistest.Start(b).Addr()
}

// monitoringHooks return hooks doing what the worker's metrics do per job:
// a busy gauge, processed and failed counters, a duration histogram.
func monitoringHooks() (func(*Job), func(*Job, time.Duration, error)) {
	busy := prometheus.NewGauge(prometheus.GaugeOpts{Name: "busy"})
	processed := prometheus.NewCounter(prometheus.CounterOpts{Name: "processed"})
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "failed"})
	took := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "took", Buckets: prometheus.DefBuckets})
	return func(*Job) { busy.Inc() }, func(_ *Job, d time.Duration, err error) {
		busy.Dec()
		processed.Inc()
		if err != nil {
			failed.Inc()
		}
		took.Observe(d.Seconds())
	}
}

// BenchmarkHooks measures what the monitoring hooks add to each job, on
// the consumer's path (onStart, onFinish), from 4 goroutines at once as
// with Concurrency 4. Compare with the time per job of BenchmarkThroughput.
func BenchmarkHooks(b *testing.B) {
	for _, hooks := range []string{"none", "monitoring"} {
		b.Run("hooks="+hooks, func(b *testing.B) {
			var o ConsumerOptions
			if hooks == "monitoring" {
				o.OnStart, o.OnFinish = monitoringHooks()
			}
			c := NewConsumer(nil, "", "bench", NewMux(), o)
			job := &Job{ID: "echo.bench", Type: TypeEcho}
			ctx := context.Background()
			b.SetParallelism(2) // 2 x GOMAXPROCS (2) goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.workers.onStart(ctx, job)
					c.workers.onFinish(ctx, job, time.Millisecond, nil)
				}
			})
		})
	}
}

// cpuTime returns the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
