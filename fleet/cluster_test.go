package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
)

// TestFleetOnRedisCluster beats, reads, pages, prunes and deregisters
// workers on a real three-master Redis Cluster, where the heartbeat's
// hash, the index and the stream live in different slots: every write and
// read must keep within a slot per script or transaction.
func TestFleetOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	rdb := cluster.Client(t)
	ctx := context.Background()

	start := func(id, state string) *heartbeat.Beater {
		t.Helper()
		b, err := heartbeat.New(rdb, heartbeat.Options{
			Interval:   time.Second,
			StateIndex: true,
			Report: func() heartbeat.Status {
				return heartbeat.Status{Identity: heartbeat.Identity{WorkerID: id, Service: "worker"}, State: state}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Check(ctx); err != nil {
			t.Fatalf("%s: first beat on the cluster: %v", id, err)
		}
		t.Cleanup(func() { _ = b.Stop(context.Background()) })
		return b
	}
	start("w-busy", "BUSY")
	idle := start("w-idle", "IDLE")
	start("w-gone", "IDLE")

	r := NewReader(rdb, Options{})
	f, err := r.List(ctx)
	if err != nil || f.Summary.Alive != 3 {
		t.Fatalf("List = %+v, %v; want 3 alive", f.Summary, err)
	}
	s, _, err := r.Summary(ctx)
	if err != nil || s.Alive != 3 || s.ByState["BUSY"] != 1 || s.ByState["IDLE"] != 2 {
		t.Fatalf("Summary = %+v, %v; want 3 alive, 1 BUSY and 2 IDLE", s, err)
	}
	p, err := r.Page(ctx, Query{State: "IDLE", Limit: 1})
	if err != nil || len(p.Workers) != 1 || p.Workers[0].WorkerID != "w-gone" || p.Next == "" {
		t.Fatalf("Page(IDLE, 1) = %+v, %v; want w-gone and a next page", p, err)
	}
	if ttl := rdb.PTTL(ctx, heartbeat.KeyPrefix+"w-busy").Val(); ttl <= 0 || ttl > 3*time.Second {
		t.Errorf("TTL of the hash = %v, want set with the hash, at most 3 x the interval", ttl)
	}
	if n := rdb.XLen(ctx, heartbeat.StreamKey).Val(); n < 3 {
		t.Errorf("XLEN %s = %d, want a beat of each worker", heartbeat.StreamKey, n)
	}

	// A worker killed: its hash gone, its index entries left behind.
	if err := rdb.Del(ctx, heartbeat.KeyPrefix+"w-gone").Err(); err != nil {
		t.Fatal(err)
	}
	f, err = r.List(ctx)
	if err != nil || f.Summary.Total != 2 {
		t.Fatalf("List after a hash vanished = %+v, %v; want 2 workers", f.Summary, err)
	}
	if _, err := rdb.ZScore(ctx, heartbeat.IndexKey, "w-gone").Result(); err == nil {
		t.Errorf("w-gone still in %s after a read pruned it", heartbeat.IndexKey)
	}
	if n := rdb.ZCard(ctx, heartbeat.DeadlineKey).Val(); n != 2 {
		t.Errorf("ZCARD %s = %d, want 2 after the prune", heartbeat.DeadlineKey, n)
	}

	// A clean stop deregisters.
	if err := idle.Stop(ctx); err != nil {
		t.Fatalf("Stop on the cluster: %v", err)
	}
	s, _, err = r.Summary(ctx)
	if err != nil || s.Total != 1 || s.ByState["BUSY"] != 1 {
		t.Fatalf("Summary after a stop = %+v, %v; want only w-busy", s, err)
	}
	if n := rdb.Exists(ctx, heartbeat.KeyPrefix+"w-idle").Val(); n != 0 {
		t.Errorf("the stopped worker's hash exists")
	}
}
