package jobs

import (
	"errors"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
)

// TestEnqueueWaitsForReplicas checks Replicas against a real master: with
// no replica, Wait 1 reports the job not replicated (the master has it);
// with a replica attached,
// and after the replica's script cache is empty (as after a failover), the
// job is queued and the replica has it when Enqueue returns.
func TestEnqueueWaitsForReplicas(t *testing.T) {
	master, rdb := newRedis(t)
	ctx := t.Context()
	tests := []struct {
		name     string
		replicas Replicas
		replica  bool
		wantErr  error
	}{
		{name: "no wait", replicas: Replicas{}},
		{name: "wait, no replica", replicas: Replicas{Wait: 1, Timeout: 50 * time.Millisecond}, wantErr: ErrNotReplicated},
		{name: "wait, one replica", replicas: Replicas{Wait: 1, Timeout: 2 * time.Second}, replica: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var replica *redistest.Server
			if tt.replica {
				replica = redistest.Start(t)
				replica.ReplicaOf(t, master.Addr())
				if err := rdb.ScriptFlush(ctx).Err(); err != nil { // EVALSHA meets NOSCRIPT
					t.Fatal(err)
				}
			}
			q := NewQueue(rdb, "", QueueOptions{Replicas: tt.replicas})
			id := NewID("echo")
			info, _, err := q.EnqueueWith(ctx, "echo", map[string]string{"m": "x"}, EnqueueOptions{ID: id})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if got, err := q.Get(ctx, id); err != nil || got.Status != StatusQueued {
					t.Errorf("the master's record of %s: %+v, %v; want it queued", id, got, err)
				}
				return
			}
			if replica != nil {
				if got := replica.Client(t).HGet(ctx, "job:"+info.ID, fieldStatus).Val(); got != StatusQueued {
					t.Errorf("the replica has status %q for %s when Enqueue returns; want %q", got, info.ID, StatusQueued)
				}
			}
		})
	}
}
