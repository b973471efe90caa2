package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/bench/internal/redisproc"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/worker"
)

// waitTimeout bounds any wait for jobs to be done.
const waitTimeout = 3 * time.Minute

// tally counts handled jobs, from the first start to the n-th end.
type tally struct {
	n     int64
	count atomic.Int64
	first atomic.Int64 // Unix ns of the first start
	last  atomic.Int64 // Unix ns of the n-th end
	done  chan struct{}
}

func newTally(n int) *tally { return &tally{n: int64(n), done: make(chan struct{})} }

func (t *tally) started(now time.Time) { t.first.CompareAndSwap(0, now.UnixNano()) }

func (t *tally) finished() {
	if t.count.Add(1) == t.n {
		t.last.Store(time.Now().UnixNano())
		close(t.done)
	}
}

func (t *tally) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(waitTimeout):
		return fmt.Errorf("%d of %d jobs done after %v", t.count.Load(), t.n, waitTimeout)
	}
}

// rate is the jobs per second from the first start to the last end.
func (t *tally) rate() float64 {
	return float64(t.n) / (time.Duration(t.last.Load() - t.first.Load())).Seconds()
}

// drain times no-op jobs drained from a filled queue by 4 consumers.
func (b *bench) drain(ctx context.Context) error {
	res, err := b.eachRound(ctx, func(ctx context.Context, q queue) (map[string]float64, error) {
		defer q.close()
		if err := q.fill(ctx, b.drainJobs, func(int) []byte { return []byte("{}") }); err != nil {
			return nil, err
		}
		t := newTally(b.drainJobs)
		stop, err := q.start(ctx, 4, 1, func([]byte) { t.started(time.Now()); t.finished() })
		if err != nil {
			return nil, err
		}
		defer stop()
		if err := t.wait(ctx); err != nil {
			return nil, err
		}
		return map[string]float64{"jobs/s": t.rate()}, nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("\n## drain: %d no-op jobs, 4 consumers x 1 (median of %d rounds)\n\n", b.drainJobs, b.rounds)
	printTable(res, []string{"jobs/s"}, "jobs/s")
	return nil
}

// latency enqueues jobs at a steady rate and measures how long each waits
// before its handler starts.
func (b *bench) latency(ctx context.Context) error {
	res, err := b.eachRound(ctx, func(ctx context.Context, q queue) (map[string]float64, error) {
		defer q.close()
		n := int(float64(b.rate) * b.latencyFor.Seconds())
		t := newTally(n)
		waits := make([]time.Duration, 0, n)
		var mu sync.Mutex
		stop, err := q.start(ctx, 4, 1, func(p []byte) {
			now := time.Now()
			ns, _ := strconv.ParseInt(string(p[5:len(p)-1]), 10, 64) // {"t":<ns>}
			mu.Lock()
			waits = append(waits, now.Sub(time.Unix(0, ns)))
			mu.Unlock()
			t.finished()
		})
		if err != nil {
			return nil, err
		}
		defer stop()
		// The machine's own floor: how late a goroutine wakes from a 1 ms
		// sleep meanwhile (a loaded 2-CPU machine wakes it late too).
		var late []time.Duration
		floorDone := make(chan struct{})
		fctx, cancelFloor := context.WithCancel(ctx)
		defer cancelFloor()
		go func() {
			defer close(floorDone)
			for fctx.Err() == nil {
				t := time.Now()
				time.Sleep(time.Millisecond)
				late = append(late, time.Since(t)-time.Millisecond)
			}
		}()
		start, every := time.Now(), time.Second/time.Duration(b.rate)
		for i := range n {
			if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
				time.Sleep(d)
			}
			p := []byte(`{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`)
			if err := q.enqueue(ctx, p); err != nil {
				return nil, err
			}
		}
		err = t.wait(ctx)
		cancelFloor()
		<-floorDone
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		return map[string]float64{
			"wake-up late p99 ms": float64(redisproc.Quantile(late, 0.99)) / 1e6,
			"p50 ms":              float64(redisproc.Quantile(waits, 0.5)) / 1e6,
			"p90 ms":              float64(redisproc.Quantile(waits, 0.9)) / 1e6,
			"p99 ms":              float64(redisproc.Quantile(waits, 0.99)) / 1e6,
			"p99.9 ms":            float64(redisproc.Quantile(waits, 0.999)) / 1e6,
		}, nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("\n## latency: enqueue to start at %d jobs/s for %v, 4 consumers x 1 (median of %d rounds)\n\n", b.rate, b.latencyFor, b.rounds)
	printTable(res, []string{"p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "wake-up late p99 ms"}, "")
	fmt.Println("\n(wake-up late: how much later than asked a goroutine woke from time.Sleep(1ms) during the same round, the machine's own floor)")
	return nil
}

// sleep runs 1 ms jobs at a total concurrency of 16 and compares the rate
// with the ideal the handlers' sleeps set: 16 / the mean handler time.
func (b *bench) sleep(ctx context.Context) error {
	res, err := b.eachRound(ctx, func(ctx context.Context, q queue) (map[string]float64, error) {
		defer q.close()
		if err := q.fill(ctx, b.sleepJobs, func(int) []byte { return []byte("{}") }); err != nil {
			return nil, err
		}
		t := newTally(b.sleepJobs)
		var slept atomic.Int64
		stop, err := q.start(ctx, 4, 4, func([]byte) {
			start := time.Now()
			t.started(start)
			time.Sleep(time.Millisecond)
			slept.Add(int64(time.Since(start)))
			t.finished()
		})
		if err != nil {
			return nil, err
		}
		defer stop()
		if err := t.wait(ctx); err != nil {
			return nil, err
		}
		mean := time.Duration(slept.Load() / int64(b.sleepJobs))
		ideal := 16 / mean.Seconds()
		return map[string]float64{"jobs/s": t.rate(), "handler ms": mean.Seconds() * 1e3, "ideal jobs/s": ideal, "of ideal": t.rate() / ideal}, nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("\n## sleep: %d jobs of time.Sleep(1ms), 4 consumers x 4 (median of %d rounds)\n\n", b.sleepJobs, b.rounds)
	printTable(res, []string{"jobs/s", "handler ms", "ideal jobs/s", "of ideal"}, "jobs/s")
	return nil
}

// beats runs echo jobs on one botfleet worker, enqueued at a steady rate,
// and counts its heartbeat beats (entries added to worker:status) and
// Redis's CPU per job (enqueue, run and heartbeat together).
func (b *bench) beats(ctx context.Context) error {
	var beats, cpu, rates []float64
	for range b.rounds {
		if err := b.flush(ctx); err != nil {
			return err
		}
		q := jobs.NewQueue(b.rdb, queueName, jobs.QueueOptions{})
		t := newTally(b.beatJobs)
		mux := jobs.NewMux()
		mux.HandleFunc("echo", func(_ context.Context, j *jobs.Job) (any, error) {
			t.started(time.Now())
			t.finished()
			return json.RawMessage(j.Payload), nil
		})
		rdb := redis.NewClient(&redis.Options{Addr: b.addr, ContextTimeoutEnabled: true})
		w, err := worker.New(worker.Options{ID: "bench-beats", Redis: rdb, Mux: mux, Queue: queueName, Addr: "127.0.0.1:0",
			Logger: slog.New(logging.NewJSONHandler(io.Discard, nil)), Deployment: &logging.Deployment{Hostname: "bench"}})
		if err != nil {
			return err
		}
		cpu0, _ := redisproc.CPU(ctx, b.rdb)
		len0 := b.rdb.XLen(ctx, heartbeat.StreamKey).Val()
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx) }()
		<-w.Started()
		start, every := time.Now(), time.Second/time.Duration(b.beatRate)
		for i := range b.beatJobs {
			if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
				time.Sleep(d)
			}
			if _, err := q.Enqueue(ctx, "echo", map[string]int{"n": i}); err != nil {
				cancel()
				return errors.Join(err, <-done)
			}
		}
		err = t.wait(ctx)
		cpu1, _ := redisproc.CPU(ctx, b.rdb)
		len1 := b.rdb.XLen(ctx, heartbeat.StreamKey).Val()
		cancel()
		err = errors.Join(err, <-done)
		_ = rdb.Close()
		if err != nil {
			return err
		}
		beats = append(beats, float64(len1-len0)/float64(b.beatJobs))
		cpu = append(cpu, float64(cpu1-cpu0)/1e3/float64(b.beatJobs))
		rates = append(rates, t.rate())
	}
	fmt.Printf("\n## beats: %d echo jobs at %d jobs/s on one botfleet worker, concurrency 1 (median of %d rounds)\n\n", b.beatJobs, b.beatRate, b.rounds)
	fmt.Printf("| beats per job | Redis CPU µs per job | jobs/s |\n|---:|---:|---:|\n| %.3f | %.1f | %.0f |\n",
		median(beats), median(cpu), median(rates))
	return nil
}

// printTable prints one row per queue with the median of each column, and,
// when ratio names a column, botfleet's value of it divided by asynq's.
func printTable(res map[string][]map[string]float64, cols []string, ratio string) {
	fmt.Printf("| queue |")
	for _, c := range cols {
		fmt.Printf(" %s |", c)
	}
	fmt.Printf("\n|---|")
	for range cols {
		fmt.Printf("---:|")
	}
	fmt.Println()
	med := map[string]map[string]float64{}
	for _, name := range []string{"botfleet", "asynq"} {
		med[name] = map[string]float64{}
		if len(res[name]) == 0 {
			continue
		}
		fmt.Printf("| %s |", name)
		for _, c := range cols {
			var vs []float64
			for _, r := range res[name] {
				vs = append(vs, r[c])
			}
			med[name][c] = median(vs)
			fmt.Printf(" %s |", format(med[name][c]))
		}
		fmt.Println()
	}
	for _, c := range cols {
		a, f := med["asynq"][c], med["botfleet"][c]
		switch {
		case ratio == c && a != 0:
			fmt.Printf("\nbotfleet ÷ asynq, %s: %.2f\n", c, f/a)
		case ratio == "" && f != 0:
			fmt.Printf("\nasynq ÷ botfleet, %s: %.0f\n", c, a/f)
		}
	}
}

func format(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}
