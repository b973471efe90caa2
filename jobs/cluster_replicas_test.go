package jobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
)

// TestEnqueueWaitsForReplicasOnCluster checks Replicas on a real Redis
// Cluster of three masters with a replica each: Enqueue sends the script
// and WAIT to the master of the queue's slot, so with Wait 1 every job is
// on that master's replica when Enqueue returns, and with Wait 2 (more
// replicas than the master has) or with the master's replica frozen,
// Enqueue reports the job not replicated.
func TestEnqueueWaitsForReplicasOnCluster(t *testing.T) {
	cluster := redistest.StartClusterWithReplicas(t, 3, 1)
	rdb := cluster.Client(t)
	ctx := t.Context()

	// The tags {a}, {b} and {c} hash to slots 15495, 3300 and 7365: one
	// queue on each master.
	queues := []string{"a", "b", "c"}
	replicaOf := map[string]*redis.Client{} // queue -> its master's replica, READONLY
	masterOf := map[string]string{}         // queue -> its master's address
	seen := map[string]bool{}
	for _, queue := range queues {
		master, err := rdb.MasterForKey(ctx, "jobs:{"+queue+"}")
		if err != nil {
			t.Fatalf("MasterForKey(jobs:{%s}): %v", queue, err)
		}
		addr := master.Options().Addr
		if seen[addr] {
			t.Fatalf("queue %s on master %s, as another queue: want one queue on each master", queue, addr)
		}
		seen[addr] = true
		replicas := cluster.ReplicasOf(t, addr)
		if len(replicas) != 1 {
			t.Fatalf("ReplicasOf(%s) = %v, want one replica", addr, replicas)
		}
		masterOf[queue], replicaOf[queue] = addr, readOnlyClient(t, replicas[0])
	}
	// EVALSHA meets NOSCRIPT on every master: the script goes again as
	// EVAL, still in a pipeline with WAIT on the master's connection.
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return node.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("wait 1: the replica has each job when Enqueue returns", func(t *testing.T) {
		qs := map[string]*Queue{}
		for _, queue := range queues {
			qs[queue] = NewQueue(rdb, queue, QueueOptions{Replicas: Replicas{Wait: 1, Timeout: time.Second}})
		}
		enqueued := map[string]int64{}
		start := time.Now()
		for i := range 21 {
			queue := queues[i%len(queues)]
			info, err := qs[queue].Enqueue(ctx, "echo", map[string]int{"n": i})
			if err != nil {
				t.Fatalf("Enqueue %d on queue %s (master %s): %v", i, queue, masterOf[queue], err)
			}
			enqueued[queue]++
			key := "job:{" + queue + "}:" + info.ID
			if got, err := replicaOf[queue].HGet(ctx, key, fieldStatus).Result(); err != nil || got != StatusQueued {
				t.Errorf("HGET %s %s on the replica of %s when Enqueue returns = %q, %v; want %q",
					key, fieldStatus, masterOf[queue], got, err, StatusQueued)
			}
		}
		t.Logf("21 enqueues with WAIT 1 took %v", time.Since(start).Round(time.Millisecond))
		for _, queue := range queues {
			stream := "jobs:{" + queue + "}"
			if n, err := replicaOf[queue].XLen(ctx, stream).Result(); err != nil || n != enqueued[queue] {
				t.Errorf("XLEN %s on the replica of %s = %d, %v; want %d", stream, masterOf[queue], n, err, enqueued[queue])
			}
		}
	})

	// A frozen replica tells the queues apart: were WAIT sent to any node
	// but the queue's master, it would count another master's replica.
	t.Run("wait 1: the queue's replica frozen", func(t *testing.T) {
		const timeout = 200 * time.Millisecond
		frozen := queues[0]
		replica := cluster.ReplicasOf(t, masterOf[frozen])[0]
		thaw := cluster.Freeze(t, replica)
		ids := map[string]string{}
		for _, queue := range queues {
			q := NewQueue(rdb, queue, QueueOptions{Replicas: Replicas{Wait: 1, Timeout: timeout}})
			id := NewID("echo")
			_, _, err := q.EnqueueWith(ctx, "echo", "x", EnqueueOptions{ID: id})
			ids[queue] = id
			if queue != frozen {
				if err != nil {
					t.Errorf("queue %s (master %s): Enqueue = %v, want nil: only queue %s's replica is frozen", queue, masterOf[queue], err, frozen)
				}
				continue
			}
			if !errors.Is(err, ErrNotReplicated) {
				t.Errorf("queue %s: Enqueue with its replica %s frozen = %v, want ErrNotReplicated", queue, replica, err)
			} else if want := "0 of 1 replicas within " + timeout.String(); !strings.Contains(err.Error(), want) {
				t.Errorf("queue %s: error %q, want it to say %q", queue, err, want)
			}
			if got, err := q.Get(ctx, id); err != nil || got.Status != StatusQueued {
				t.Errorf("queue %s: the master's record of %s: %+v, %v; want it queued", queue, id, got, err)
			}
		}
		thaw()
		key := "job:{" + frozen + "}:" + ids[frozen]
		waitFor(t, "the thawed replica to catch up", func() bool {
			return replicaOf[frozen].HGet(ctx, key, fieldStatus).Val() == StatusQueued
		})
		q := NewQueue(rdb, frozen, QueueOptions{Replicas: Replicas{Wait: 1, Timeout: time.Second}})
		if _, err := q.Enqueue(ctx, "echo", "y"); err != nil {
			t.Errorf("queue %s: Enqueue after the thaw = %v, want nil", frozen, err)
		}
	})

	t.Run("wait 2: more replicas than the master has", func(t *testing.T) {
		const timeout = 200 * time.Millisecond
		for _, queue := range queues {
			q := NewQueue(rdb, queue, QueueOptions{Replicas: Replicas{Wait: 2, Timeout: timeout}})
			id := NewID("echo")
			start := time.Now()
			_, _, err := q.EnqueueWith(ctx, "echo", "x", EnqueueOptions{ID: id})
			took := time.Since(start)
			t.Logf("queue %s: Enqueue with WAIT 2 returned after %v: %v", queue, took.Round(time.Millisecond), err)
			if !errors.Is(err, ErrNotReplicated) {
				t.Fatalf("queue %s: Enqueue = %v, want ErrNotReplicated", queue, err)
			}
			// WAIT ran on the queue's master, which has one replica.
			if want := "1 of 2 replicas within " + timeout.String(); !strings.Contains(err.Error(), want) {
				t.Errorf("queue %s: error %q, want it to say %q", queue, err, want)
			}
			if took > 10*timeout+2*time.Second {
				t.Errorf("queue %s: Enqueue took %v with a WAIT timeout of %v", queue, took, timeout)
			}
			if got, err := q.Get(ctx, id); err != nil || got.Status != StatusQueued {
				t.Errorf("queue %s: the master's record of %s: %+v, %v; want it queued", queue, id, got, err)
			}
			key := "job:{" + queue + "}:" + id
			if got, err := replicaOf[queue].HGet(ctx, key, fieldStatus).Result(); err != nil || got != StatusQueued {
				t.Errorf("HGET %s %s on the replica of %s, which confirmed it = %q, %v; want %q",
					key, fieldStatus, masterOf[queue], got, err, StatusQueued)
			}
		}
	})
}

// readOnlyClient returns a client of the cluster replica at addr whose
// every connection has sent READONLY, so that it answers reads of its
// master's slots instead of redirecting them; closed when the test ends.
func readOnlyClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:       addr,
		MaxRetries: -1, // a MOVED is an error to see, not to retry
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			return cn.ReadOnly(ctx).Err()
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
