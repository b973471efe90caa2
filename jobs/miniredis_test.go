package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging/logtest"
)

// TestMiniredis runs the queue on the embedded Redis `botfleet up` uses:
// the commands and scripts the queue relies on must work there too.
func TestMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	q := NewQueue(rdb, "", QueueOptions{MaxAttempts: 2})
	rec := logtest.NewRecorder()
	o := testOptions(rec)
	// Renewals every 500ms leave a loaded test machine (the race detector,
	// other test binaries) a second of slack: 330ms was not always enough.
	o.VisibilityTimeout = 1500 * time.Millisecond
	var longRuns atomic.Int32
	mux := NewMux()
	Builtins(mux, nil)
	mux.HandleFunc("long", func(ctx context.Context, _ *Job) (any, error) {
		longRuns.Add(1)
		select { // the job's own work: two visibility timeouts, four claims by the idle worker
		case <-time.After(2 * o.VisibilityTimeout):
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	startConsumer(t, rdb, "", "worker-1", mux, o)
	startConsumer(t, rdb, "", "worker-2", mux, o)

	t.Run("echo", func(t *testing.T) {
		info := waitStatus(t, q, enqueue(t, q, "echo", map[string]string{"hi": "there"}).ID, StatusSucceeded)
		if !jsonEqual(t, info.Result, []byte(`{"hi":"there"}`)) || info.Attempts != 1 {
			t.Errorf("Info = %+v, want the payload back after one attempt", info)
		}
	})
	t.Run("idempotent enqueue, backlog limit", func(t *testing.T) {
		small := NewQueue(rdb, "small", QueueOptions{MaxBacklog: 1})
		ctx := context.Background()
		first, _, err := small.EnqueueWith(ctx, "echo", nil, EnqueueOptions{IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		again, existed, err := small.EnqueueWith(ctx, "echo", nil, EnqueueOptions{IdempotencyKey: "k"})
		if err != nil || !existed || again.ID != first.ID {
			t.Errorf("EnqueueWith again = %+v, %v, %v; want %s, existed", again, existed, err, first.ID)
		}
		if _, err := small.Enqueue(ctx, "echo", nil); !errors.Is(err, ErrBacklogFull) {
			t.Errorf("Enqueue past MaxBacklog 1 = %v, want ErrBacklogFull", err)
		}
	})
	t.Run("retry then dead letter", func(t *testing.T) {
		info := waitStatus(t, q, enqueue(t, q, "fail", FailPayload{Message: "nope"}).ID, StatusFailed)
		if info.Attempts != 2 || info.Error != "nope" {
			t.Errorf("Info = %+v, want 2 attempts, error nope", info)
		}
		if dead := deadEntries(t, rdb, "default"); len(dead) != 1 || dead[0]["id"] != info.ID || dead[0]["attempt"] != "2" {
			t.Errorf("dead letters = %v, want the job, attempt 2", dead)
		}
	})
	t.Run("long job kept by its worker", func(t *testing.T) {
		info := waitStatus(t, q, enqueue(t, q, "long", nil).ID, StatusSucceeded)
		if longRuns.Load() != 1 || info.Attempts != 1 {
			t.Errorf("Info = %+v after %d runs, want one run", info, longRuns.Load())

		}
	})
	t.Run("claimed from a worker that died", func(t *testing.T) {
		claims := NewQueue(rdb, "claims", QueueOptions{})
		doomed := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
		started := make(chan string, 1)
		a := startConsumer(t, doomed, "claims", "worker-a", blockingMux(started), o)
		info := enqueue(t, claims, "work", nil)
		<-started
		waitStatus(t, claims, info.ID, StatusRunning)
		a.wantRunErr = redis.ErrClosed
		doomed.Close()
		var runs atomic.Int32
		startConsumer(t, rdb, "claims", "worker-b", quickMux(&runs), o)
		if done := waitStatus(t, claims, info.ID, StatusSucceeded); done.Worker != "worker-b" || done.Attempts != 2 {
			t.Errorf("Info = %+v, want finished by worker-b on attempt 2", done)
		}
		a.stop(t, 50*time.Millisecond)
	})
	t.Run("no command refused", func(t *testing.T) {
		for _, r := range rec.Records() {
			if r.Message == "redis refused a command" {
				t.Errorf("record %q: %v", r.Message, r.Attrs)
			}
		}
	})
	t.Run("stats", func(t *testing.T) {
		st, err := q.Stats(context.Background())
		if err != nil || st != (Stats{DeadLetters: 1, MaxBacklog: DefaultMaxBacklog}) {
			t.Errorf("Stats = %+v, %v; want only the dead letter: %v", st, err, deadEntries(t, rdb, "default"))
		}
	})
}
