package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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

// TestLongJobNotStolen runs a job for two visibility timeouts next to an
// idle worker: the running worker's lease renewals keep it.
func TestLongJobNotStolen(t *testing.T) {
	_, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	o := testOptions(logtest.NewRecorder())
	// Renewals every 500ms leave a loaded test machine (the race detector,
	// other test binaries) a second of slack: 330ms was not always enough.
	o.VisibilityTimeout = 1500 * time.Millisecond
	var runs atomic.Int32
	mux := NewMux()
	mux.HandleFunc("long", func(ctx context.Context, _ *Job) (any, error) {
		runs.Add(1)
		// The job's own work: two visibility timeouts, four claims by
		// the idle worker.
		select {
		case <-time.After(2 * o.VisibilityTimeout):
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

// TestShutdownRedisFrozen freezes redis-server (SIGSTOP) under a consumer
// whose job then finishes: Shutdown returns about a second after its
// deadline, though the job's outcome cannot be written and the client's
// own timeouts are a minute long.
func TestShutdownRedisFrozen(t *testing.T) {
	srv, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	// A client that waits as long as a hung server makes it: only the
	// consumer's own bounds end its waits.
	patient := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxRetries: -1})
	t.Cleanup(func() { _ = patient.Close() })
	release := make(chan struct{})
	mux := NewMux()
	mux.HandleFunc("work", func(context.Context, *Job) (any, error) {
		<-release
		return "done", nil
	})
	a := startConsumer(t, patient, "", "worker-a", mux, testOptions(logtest.NewRecorder()))
	info := enqueue(t, q, "work", nil)
	waitStatus(t, q, info.ID, StatusRunning)

	freeze(t, rdb)
	close(release) // its outcome waits for a Redis that does not answer
	const grace = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	err := a.Shutdown(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want an error wrapping DeadlineExceeded: the outcome is not recorded", err)
	}
	// Bounded by grace + stopGrace; the slack is for a loaded machine. An
	// unbounded wait lasts the client's minute.
	if limit := grace + stopGrace + 5*time.Second; took > limit {
		t.Errorf("Shutdown took %v with Redis frozen, want at most %v", took, limit)
	}
}

// freeze stops the redis-server rdb talks to with SIGSTOP, until the test
// ends.
func freeze(t *testing.T, rdb *redis.Client) {
	t.Helper()
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(info, "process_id:")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
	if err != nil {
		t.Fatalf("INFO server: no process_id: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
}

// TestAttemptsCountRuns: jobs a worker read ahead and never started, when
// it stopped, run as the same attempt on the worker that claims them; the
// one it started runs as the next. Attempts counts runs that started.
func TestAttemptsCountRuns(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{})
	var ids []string
	for range 5 {
		ids = append(ids, enqueue(t, q, "work", nil).ID)
	}
	// A worker read all five ahead, started the first and stopped.
	if err := rdb.XGroupCreateMkStream(ctx, "jobs:default", Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "ghost", Streams: []string{"jobs:default", ">"}, Count: 5, Block: -1})
	rdb.HSet(ctx, "job:"+ids[0], "status", StatusRunning, "attempts", 1, "worker", "ghost") // as its committer wrote

	var runs atomic.Int32
	o := testOptions(logtest.NewRecorder())
	o.VisibilityTimeout = 50 * time.Millisecond
	startConsumer(t, rdb, "", "worker-b", quickMux(&runs), o)
	for i, id := range ids {
		want := 1
		if i == 0 {
			want = 2
		}
		if info := waitStatus(t, q, id, StatusSucceeded); info.Attempts != want || info.Worker != "worker-b" {
			t.Errorf("job %d: Info = %+v, want attempts %d, by worker-b", i, info, want)
		}
	}
	if got := runs.Load(); got != 5 {
		t.Errorf("worker-b ran %d jobs, want 5", got)
	}
}

// TestLeaseRenewalWarning: renewing leases warns only about a job this
// worker started that another worker owns now. An entry acknowledged while
// the renewal ran (its outcome was just written) is no concern, and one
// read ahead and claimed elsewhere is dropped without a warning.
func TestLeaseRenewalWarning(t *testing.T) {
	const warning = "another worker claimed jobs this one started; they may run twice"
	tests := []struct {
		name      string
		started   bool
		meanwhile string // "ack": this worker's own outcome; "claim": worker-b took it
		wantWarn  bool
		wantHeld  bool
	}{
		{name: "acknowledged by this worker meanwhile", started: true, meanwhile: "ack", wantHeld: true},
		{name: "claimed by another while running here", started: true, meanwhile: "claim", wantWarn: true, wantHeld: true},
		{name: "claimed by another while read ahead here", meanwhile: "claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := newRedis(t)
			ctx := context.Background()
			rec := logtest.NewRecorder()
			c := NewConsumer(rdb, "", "worker-a", NewMux(), testOptions(rec))
			if err := c.reader.ensureGroup(ctx); err != nil {
				t.Fatal(err)
			}
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default", Values: []string{"id", "echo.1", "type", "echo", "payload", "{}"}})
			ds, err := c.reader.read(ctx, 1, time.Millisecond)
			if err != nil || len(ds) != 1 {
				t.Fatalf("read = %v, %v; want the entry", ds, err)
			}
			c.held.add(ds, ds)
			if tt.started {
				c.held.next(nil)
			}
			id := ds[0].streamID
			switch tt.meanwhile {
			case "ack":
				rdb.XAck(ctx, "jobs:default", Group, id)
				rdb.XDel(ctx, "jobs:default", id)
			case "claim":
				rdb.XClaim(ctx, &redis.XClaimArgs{Stream: "jobs:default", Group: Group, Consumer: "worker-b", Messages: []string{id}})
			}
			c.keeper.renewLeases(ctx)
			if got := hasRecord(rec, slog.LevelWarn, warning); got != tt.wantWarn {
				t.Errorf("warned %v, want %v; records %q", got, tt.wantWarn, rec.Messages())
			}
			if held := len(c.held.ids()) == 1; held != tt.wantHeld {
				t.Errorf("entry held: %v, want %v", held, tt.wantHeld)
			}
		})
	}
}
