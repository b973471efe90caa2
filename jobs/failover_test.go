package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging/logtest"
)

// blockingMux has a "work" handler that signals started, then blocks until
// its context ends, and an echo.
func blockingMux(started chan<- string) *Mux {
	mux := NewMux()
	Builtins(mux, nil)
	mux.HandleFunc("work", func(ctx context.Context, job *Job) (any, error) {
		started <- job.ID
		<-ctx.Done()
		return nil, ctx.Err()
	})
	return mux
}

// quickMux runs "work" at once.
func quickMux(runs *atomic.Int32) *Mux {
	mux := NewMux()
	Builtins(mux, nil)
	mux.HandleFunc("work", func(context.Context, *Job) (any, error) {
		runs.Add(1)
		return "done", nil
	})
	return mux
}

// TestWorkerDiesMidJob cuts a worker off from Redis while it runs a job, as
// a crash would: another worker claims the job after the visibility timeout
// and finishes it.
func TestWorkerDiesMidJob(t *testing.T) {
	srv, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	o := testOptions(logtest.NewRecorder())

	doomed := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	started := make(chan string, 1)
	a := startConsumer(t, doomed, "", "worker-a", blockingMux(started), o)
	info := enqueue(t, q, "work", nil)
	if id := <-started; id != info.ID {
		t.Fatalf("worker-a started %s, want %s", id, info.ID)
	}
	waitStatus(t, q, info.ID, StatusRunning)
	a.wantRunErr = redis.ErrClosed
	doomed.Close() // worker-a is gone: no more lease renewals, no outcome

	var runs atomic.Int32
	startConsumer(t, rdb, "", "worker-b", quickMux(&runs), o)
	done := waitStatus(t, q, info.ID, StatusSucceeded)
	if done.Worker != "worker-b" || done.Attempts != 2 || runs.Load() != 1 {
		t.Errorf("Info = %+v after %d runs on worker-b; want worker-b, attempt 2, one run", done, runs.Load())
	}
	if err := a.stop(t, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown of the cut-off worker = %v, want DeadlineExceeded", err)
	}
}

// TestLongJobNotStolen runs a job for many visibility timeouts next to an
// idle worker: the running worker's lease renewals keep it.
func TestLongJobNotStolen(t *testing.T) {
	_, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	o := testOptions(logtest.NewRecorder())
	// Renewals every 170ms leave a loaded test machine 330ms of slack.
	o.VisibilityTimeout = 500 * time.Millisecond
	var runs atomic.Int32
	mux := NewMux()
	mux.HandleFunc("long", func(ctx context.Context, _ *Job) (any, error) {
		runs.Add(1)
		// The job's own work: four visibility timeouts.
		select {
		case <-time.After(4 * o.VisibilityTimeout):
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	info := enqueue(t, q, "long", nil)
	startConsumer(t, rdb, "", "worker-a", mux, o)
	waitStatus(t, q, info.ID, StatusRunning)
	startConsumer(t, rdb, "", "worker-b", mux, o)

	done := waitStatus(t, q, info.ID, StatusSucceeded)
	if runs.Load() != 1 || done.Worker != "worker-a" || done.Attempts != 1 {
		t.Errorf("Info = %+v after %d runs; want one run, by worker-a", done, runs.Load())
	}
}

// TestShutdown covers what Shutdown does with a running job: wait for it
// when there is time, or leave it pending for another worker.
func TestShutdown(t *testing.T) {
	t.Run("waits for the running job", func(t *testing.T) {
		_, rdb := newRedis(t)
		q := NewQueue(rdb, "", QueueOptions{})
		release := make(chan struct{})
		mux := NewMux()
		mux.HandleFunc("work", func(ctx context.Context, _ *Job) (any, error) {
			<-release
			return "finished", nil
		})
		a := startConsumer(t, rdb, "", "worker-a", mux, testOptions(logtest.NewRecorder()))
		info := enqueue(t, q, "work", nil)
		waitStatus(t, q, info.ID, StatusRunning)
		stopped := make(chan error, 1)
		go func() { stopped <- a.stop(t, waitTimeout) }()
		close(release)
		if err := <-stopped; err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
		// Recorded before Shutdown returned.
		if got, _ := q.Get(context.Background(), info.ID); got.Status != StatusSucceeded {
			t.Errorf("after Shutdown, status = %q, want succeeded", got.Status)
		}
	})

	t.Run("leaves an unfinished job pending", func(t *testing.T) {
		_, rdb := newRedis(t)
		q := NewQueue(rdb, "", QueueOptions{})
		o := testOptions(logtest.NewRecorder())
		started := make(chan string, 1)
		a := startConsumer(t, rdb, "", "worker-a", blockingMux(started), o)
		info := enqueue(t, q, "work", nil)
		<-started
		waitStatus(t, q, info.ID, StatusRunning)
		if err := a.stop(t, 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
		}
		ctx := context.Background()
		pending := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: "jobs:default", Group: Group, Start: "-", End: "+", Count: 10}).Val()
		if len(pending) != 1 || pending[0].Consumer != "worker-a" {
			t.Fatalf("pending = %+v, want the job, still with worker-a", pending)
		}
		if got, _ := q.Get(ctx, info.ID); got.Status != StatusRunning {
			t.Errorf("status = %q, want running: the outcome of an abandoned job is not recorded", got.Status)
		}
		var runs atomic.Int32
		startConsumer(t, rdb, "", "worker-b", quickMux(&runs), o)
		if done := waitStatus(t, q, info.ID, StatusSucceeded); done.Worker != "worker-b" {
			t.Errorf("Info = %+v, want finished by worker-b", done)
		}
	})

	t.Run("hands back jobs read but not started", func(t *testing.T) {
		_, rdb := newRedis(t)
		q := NewQueue(rdb, "", QueueOptions{})
		o := testOptions(logtest.NewRecorder())
		o.VisibilityTimeout = time.Minute // only a hand-back makes them claimable soon
		// Queued before worker-a starts, so it reads all four at once.
		enqueue(t, q, "work", nil)
		var ids []string
		for range 3 {
			ids = append(ids, enqueue(t, q, "echo", "queued behind").ID)
		}
		started := make(chan string, 1)
		a := startConsumer(t, rdb, "", "worker-a", blockingMux(started), o)
		<-started
		ctx := context.Background()
		waitFor(t, "worker-a to read the echo jobs", func() bool {
			return rdb.XPending(ctx, "jobs:default", Group).Val().Count == 4
		})
		a.stop(t, 50*time.Millisecond)
		var runs atomic.Int32
		startConsumer(t, rdb, "", "worker-b", quickMux(&runs), o)
		for _, id := range ids {
			if info := waitStatus(t, q, id, StatusSucceeded); info.Worker != "worker-b" || info.Attempts != 1 {
				t.Errorf("Info = %+v, want run once, by worker-b", info)
			}
		}
	})
}

// TestStaleHandBack: jobs a busy worker read ahead are handed to an idle
// one after half a visibility timeout, not held until the long job ends.
func TestStaleHandBack(t *testing.T) {
	_, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	o := testOptions(logtest.NewRecorder())
	// Queued before worker-a starts, so it reads all four at once.
	long := enqueue(t, q, "work", nil)
	var ids []string
	for range 3 {
		ids = append(ids, enqueue(t, q, "echo", "behind a long job").ID)
	}
	started := make(chan string, 1)
	a := startConsumer(t, rdb, "", "worker-a", blockingMux(started), o)
	<-started
	ctx := context.Background()
	waitFor(t, "worker-a to read the echo jobs", func() bool {
		return rdb.XPending(ctx, "jobs:default", Group).Val().Count == 4
	})
	var runs atomic.Int32
	startConsumer(t, rdb, "", "worker-b", quickMux(&runs), o)
	for _, id := range ids {
		if info := waitStatus(t, q, id, StatusSucceeded); info.Worker != "worker-b" || info.Attempts != 1 {
			t.Errorf("Info = %+v, want run once, by worker-b", info)
		}
	}
	if got, _ := q.Get(ctx, long.ID); got.Status != StatusRunning || got.Worker != "worker-a" {
		t.Errorf("long job = %+v, want still running on worker-a", got)
	}
	a.stop(t, 50*time.Millisecond)
}

// TestRedisOutage stops Redis under a running consumer and brings it back
// empty: the consumer logs the outage once, recreates its group, and goes
// on with new jobs.
func TestRedisOutage(t *testing.T) {
	srv, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	rec := logtest.NewRecorder()
	mux := NewMux()
	Builtins(mux, nil)
	startConsumer(t, rdb, "", "worker-1", mux, testOptions(rec))
	waitStatus(t, q, enqueue(t, q, "echo", "before").ID, StatusSucceeded)

	srv.Stop(t)
	waitFor(t, "the outage to be logged", func() bool {
		return hasRecord(rec, slog.LevelWarn, "redis unavailable; jobs wait until it answers")
	})
	srv.Restart(t)
	info := waitStatus(t, q, enqueue(t, q, "echo", "after").ID, StatusSucceeded)
	if string(info.Result) != `"after"` {
		t.Errorf("Result = %s, want \"after\"", info.Result)
	}
	waitFor(t, "the recovery to be logged", func() bool {
		return hasRecord(rec, slog.LevelInfo, "redis answered again")
	})
	var warnings int
	for _, r := range rec.Records() {
		if r.Message == "redis unavailable; jobs wait until it answers" {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d outage warnings, want 1", warnings)
	}
}
