package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"
)

// scenario is one fault under load: jobs submitted at rate from clients
// concurrent clients while fault runs beside them.
type scenario struct {
	name    string
	jobs    int
	rate    float64
	clients int
	before  func(ctx context.Context, f *fleet, note func(string, ...any)) error
	fault   func(ctx context.Context, f *fleet, note func(string, ...any)) error
}

// faultAt is when, after the first submission, a fault strikes: late
// enough that every worker is busy, early enough that jobs keep coming.
const faultAt = 8 * time.Second

func scenarios(backlog int) []scenario {
	return []scenario{
		{name: "kill-9", jobs: 1200, rate: 40, clients: 32, fault: killWorker},
		{name: "sigterm", jobs: 1200, rate: 40, clients: 32, fault: termWorker},
		{name: "redis-restart", jobs: 1200, rate: 40, clients: 32, fault: restartRedis},
		{name: "redis-sigstop", jobs: 1600, rate: 40, clients: 32, fault: freezeRedis},
		{name: "backlog", jobs: backlog * 2, rate: 100, clients: 64, before: stopWorkers, fault: startWorkersLater},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// whenBusy waits up to 5 s for w's log to show a sleep job (100 to 500
// ms) begun in the last 50 ms, so the fault catches it mid-job, and
// returns the jobs w runs then.
func whenBusy(ctx context.Context, w *worker) []string {
	var ids []string
	_ = poll(ctx, 5*time.Second, w.id+" starting a sleep job", func() bool {
		ids = ids[:0]
		fresh := false
		for id, at := range running(w.lives[len(w.lives)-1]) {
			ids = append(ids, id)
			fresh = fresh || strings.HasPrefix(id, "sleep.") && time.Since(at) < 50*time.Millisecond
		}
		return fresh
	})
	slices.Sort(ids)
	return ids
}

func killWorker(ctx context.Context, f *fleet, note func(string, ...any)) error {
	if err := sleepCtx(ctx, faultAt); err != nil {
		return err
	}
	w := f.workers[0]
	mid := whenBusy(ctx, w)
	f.killWorker(w)
	note("%s killed with SIGKILL while running %v", w.id, mid)
	if err := sleepCtx(ctx, 4*time.Second); err != nil {
		return err
	}
	return f.startWorker(ctx, w)
}

func termWorker(ctx context.Context, f *fleet, note func(string, ...any)) error {
	if err := sleepCtx(ctx, faultAt); err != nil {
		return err
	}
	w := f.workers[1]
	mid := whenBusy(ctx, w)
	took, err := w.proc.stop(30 * time.Second)
	note("%s sent SIGTERM while running %v, exited after %.1fs (SHUTDOWN_GRACE=5)", w.id, mid, took.Seconds())
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	return f.startWorker(ctx, w)
}

// restartRedis shuts Redis down with SIGTERM (a SHUTDOWN: the AOF is
// written and fsynced) and starts it again on the same port and directory.
func restartRedis(ctx context.Context, f *fleet, note func(string, ...any)) error {
	if err := sleepCtx(ctx, faultAt); err != nil {
		return err
	}
	start := time.Now()
	took, err := f.redis.stop(30 * time.Second)
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return err
	}
	if err := f.startRedis(ctx); err != nil {
		return err
	}
	note("redis-server stopped with SIGTERM in %.1fs, answering again after %.1fs", took.Seconds(), time.Since(start).Seconds())
	return nil
}

func freezeRedis(ctx context.Context, f *fleet, note func(string, ...any)) error {
	if err := sleepCtx(ctx, faultAt); err != nil {
		return err
	}
	if err := f.redis.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	err := sleepCtx(ctx, 30*time.Second)
	if err := f.redis.signal(syscall.SIGCONT); err != nil {
		return err
	}
	note("redis-server stopped with SIGSTOP for 30s, then SIGCONT")
	return err
}

func stopWorkers(ctx context.Context, f *fleet, note func(string, ...any)) error {
	for _, w := range f.workers {
		if _, err := w.proc.stop(30 * time.Second); err != nil {
			return err
		}
	}
	note("workers stopped; JOB_MAX_BACKLOG=%d", f.backlog)
	return nil
}

func startWorkersLater(ctx context.Context, f *fleet, note func(string, ...any)) error {
	if err := sleepCtx(ctx, 15*time.Second); err != nil {
		return err
	}
	for _, w := range f.workers {
		if err := f.startWorker(ctx, w); err != nil {
			return err
		}
	}
	note("workers started again after 15s")
	return nil
}

// makeJobs returns n submissions: every fifth a sleep of 100 to 500 ms
// (so faults find workers mid-job), the others echoes carrying a marker
// unique to the run, the scenario and the job. Every other client, told
// "unknown", looks the id up before it sends again.
func makeJobs(run, name string, n int, rng *rand.Rand) []*submission {
	subs := make([]*submission, n)
	for i := range subs {
		s := &submission{key: fmt.Sprintf("chaos-%s-%s-%d", run, name, i), lookupFirst: i%2 == 1}
		var payload any
		if i%5 == 0 {
			s.typ = "sleep"
			payload = map[string]string{"duration": fmt.Sprintf("%dms", 100+rng.IntN(401))}
		} else {
			s.typ, s.marker = "echo", s.key
			payload = map[string]any{"marker": s.marker, "n": i}
		}
		s.body, _ = json.Marshal(map[string]any{"type": s.typ, "payload": payload})
		subs[i] = s
	}
	return subs
}

// drain waits, up to limit, until the queue holds nothing waiting,
// running or due for a retry.
func drain(ctx context.Context, f *fleet, limit time.Duration) error {
	return poll(ctx, limit, "the queue to drain", func() bool {
		n, err := f.rdb.XLen(ctx, "jobs:default").Result()
		if err != nil || n > 0 {
			return false
		}
		m, err := f.rdb.ZCard(ctx, "jobs:default:retry").Result()
		return err == nil && m == 0
	})
}
