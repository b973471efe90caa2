package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/logging/logtest"
)

// TestQueueOnRedisCluster runs a queue's whole life on a real three-master
// Redis Cluster: every script and transaction touches keys of one slot
// (a CROSSSLOT error would fail a step), and the keys carry the queue's
// hash tag.
func TestQueueOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	rdb := cluster.Client(t)
	ctx := context.Background()

	const queue = "clq"
	var failing atomic.Bool
	mux := NewMux()
	mux.HandleFunc("echo", func(_ context.Context, j *Job) (any, error) { return j.Payload, nil })
	mux.HandleFunc("once", func(_ context.Context, j *Job) (any, error) {
		if j.Attempt == 1 {
			return nil, errors.New("first attempt fails")
		}
		return "ok", nil
	})
	mux.HandleFunc("flaky", func(_ context.Context, j *Job) (any, error) {
		if failing.Load() {
			return nil, fmt.Errorf("%s: upstream said no", j.Type)
		}
		return "ok", nil
	})
	q := NewQueue(rdb, queue, QueueOptions{MaxAttempts: 2})
	worker := startConsumer(t, rdb, queue, "worker-a", mux, testOptions(logtest.Capture(t)))

	t.Run("enqueue, idempotency and a run", func(t *testing.T) {
		first, existed, err := q.EnqueueWith(ctx, "echo", map[string]int{"n": 1}, EnqueueOptions{IdempotencyKey: "k-1"})
		if err != nil || existed {
			t.Fatalf("EnqueueWith = %+v, %v, %v", first, existed, err)
		}
		again, existed, err := q.EnqueueWith(ctx, "echo", map[string]int{"n": 2}, EnqueueOptions{IdempotencyKey: "k-1"})
		if err != nil || !existed || again.ID != first.ID {
			t.Fatalf("second EnqueueWith with the key = %+v, %v, %v; want job %s", again, existed, err, first.ID)
		}
		info := waitStatus(t, q, first.ID, StatusSucceeded)
		if string(info.Result) != `{"n":1}` {
			t.Errorf("result = %s, want the payload", info.Result)
		}
		key := "job:{" + queue + "}:" + first.ID
		if n := rdb.Exists(ctx, key).Val(); n != 1 {
			t.Errorf("EXISTS %s = %d, want 1: the job hash carries the queue's tag", key, n)
		}
		if slot, want := rdb.ClusterKeySlot(ctx, key).Val(), rdb.ClusterKeySlot(ctx, "jobs:{"+queue+"}").Val(); slot != want {
			t.Errorf("slot of %s = %d, want the stream's %d", key, slot, want)
		}
		if n := rdb.XLen(ctx, "jobs:{"+queue+"}").Val(); n != 0 {
			t.Errorf("XLEN of the stream after the job = %d, want 0 (finished entries leave it)", n)
		}
		names, err := Queues(ctx, rdb)
		if err != nil || !slices.Contains(names, queue) {
			t.Errorf("Queues = %v, %v; want %s listed", names, err, queue)
		}
	})

	t.Run("a retry through the retry set", func(t *testing.T) {
		job := enqueue(t, q, "once", nil)
		info := waitStatus(t, q, job.ID, StatusSucceeded)
		if info.Attempts != 2 {
			t.Errorf("attempts = %d, want 2", info.Attempts)
		}
	})

	t.Run("dead, shown, retried, deleted", func(t *testing.T) {
		failing.Store(true)
		job := enqueue(t, q, "flaky", nil)
		waitStatus(t, q, job.ID, StatusFailed)
		d, err := q.Show(ctx, job.ID)
		if err != nil || len(d.History) != 2 || d.DeadID == "" {
			t.Fatalf("Show = %+v, %v; want 2 attempts and a dead letter", d, err)
		}
		dead, err := q.List(ctx, ListOptions{Status: StatusDead})
		if err != nil || len(dead.Jobs) != 1 || dead.Jobs[0].ID != job.ID {
			t.Fatalf("List(dead) = %+v, %v; want the job", dead, err)
		}
		failing.Store(false)
		if err := q.Retry(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, q, job.ID, StatusSucceeded)

		failing.Store(true)
		doomed := enqueue(t, q, "flaky", nil)
		waitStatus(t, q, doomed.ID, StatusFailed)
		if err := q.Delete(ctx, doomed.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Get(ctx, doomed.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if n := len(deadEntries(t, rdb, queue)); n != 0 {
			t.Errorf("dead letters = %d, want 0", n)
		}
		failing.Store(false)
	})

	t.Run("pause holds jobs, resume runs them", func(t *testing.T) {
		if err := q.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		qi, err := q.Info(ctx)
		if err != nil || !qi.Paused {
			t.Fatalf("Info = %+v, %v; want paused", qi, err)
		}
		waitFor(t, "the worker to see the pause", worker.Paused)
		if err := q.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		job := enqueue(t, q, "echo", "after")
		waitStatus(t, q, job.ID, StatusSucceeded)
	})

	t.Run("a full backlog refuses", func(t *testing.T) {
		small := NewQueue(rdb, "tiny", QueueOptions{MaxBacklog: 1})
		enqueue(t, small, "echo", 1) // no worker reads "tiny"
		if _, err := small.Enqueue(ctx, "echo", 2); !errors.Is(err, ErrBacklogFull) {
			t.Errorf("Enqueue beyond the backlog = %v, want ErrBacklogFull", err)
		}
		st, err := small.Stats(ctx)
		if err != nil || st.Length != 1 {
			t.Errorf("Stats = %+v, %v; want 1 job", st, err)
		}
	})

	t.Run("no key outside the tags", func(t *testing.T) {
		var stray []string
		err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			keys, err := node.Keys(ctx, "job*").Result()
			for _, k := range keys {
				if !strings.Contains(k, "{") && k != QueuesKey && !strings.HasSuffix(k, ":types") {
					stray = append(stray, k)
				}
			}
			return err
		})
		if err != nil || len(stray) > 0 {
			t.Errorf("keys without a hash tag: %v (%v)", stray, err)
		}
	})
}
