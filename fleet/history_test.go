package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// addEntries appends n stream entries of worker id, in the wire format,
// timestamped from at on, one second apart, in one pipeline.
func addEntries(t *testing.T, rdb *redis.Client, id string, n int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	pipe := rdb.Pipeline()
	for i := range n {
		s := heartbeat.Status{Identity: heartbeat.Identity{WorkerID: id}, State: "IDLE", Timestamp: at.Add(time.Duration(i) * time.Second),
			Interval: time.Second, JobsProcessed: uint64(i)}
		s.Resources.MemoryMB = float64(i)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: heartbeat.StreamKey, Values: s.Fields()})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	r := fleet.NewReader(rdb, fleet.Options{})
	ctx := context.Background()
	at := time.Unix(1688851200, 0).UTC()

	addEntries(t, rdb, "early", 5, at)
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: heartbeat.StreamKey, Values: []string{"worker_id", "early", "state", "garbage"}})
	addEntries(t, rdb, "noisy", 1200, at.Add(time.Hour)) // more than two chunks after early's
	tests := []struct {
		name   string
		worker string
		n      int
		want   []uint64 // JobsProcessed of the points, which counts early's and noisy's entries
		wantID string
	}{
		{"newest of a worker behind two chunks of others, oldest first", "early", 3, []uint64{2, 3, 4}, "early"},
		{"fewer than asked, the garbage entry skipped", "early", 10, []uint64{0, 1, 2, 3, 4}, "early"},
		{"all workers", "", 3, []uint64{1197, 1198, 1199}, "noisy"},
		{"all workers, more than a chunk", "", 700, nil, "noisy"},
		{"a worker never seen", "nobody", 5, []uint64{}, ""},
		{"n=0", "early", 0, []uint64{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			points, err := r.History(ctx, tt.worker, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if points == nil {
				t.Error("History returned nil, want an empty slice")
			}
			var got []uint64
			for _, p := range points {
				got = append(got, p.JobsProcessed)
				if p.WorkerID != tt.wantID || p.MemoryMB != float64(p.JobsProcessed) {
					t.Errorf("point %+v: want worker %q", p, tt.wantID)
				}
			}
			if tt.want == nil && len(points) != tt.n {
				t.Errorf("got %d points, want %d", len(points), tt.n)
			}
			if tt.want != nil && !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !slices.IsSortedFunc(points, func(a, b fleet.Point) int { return a.Timestamp.Compare(b.Timestamp) }) {
				t.Error("points are not oldest first")
			}
		})
	}
}

// TestHistoryBounded: a worker whose last entry is further back than the
// scan bound gets no history, in a bounded read.
func TestHistoryBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	at := time.Unix(1688851200, 0).UTC()
	addEntries(t, rdb, "ancient", 3, at)
	for i := range 11 {
		addEntries(t, rdb, fmt.Sprintf("noisy-%d", i), 1000, at.Add(time.Hour))
	}
	counter := &roundTrips{}
	rdb.AddHook(counter)
	points, err := fleet.NewReader(rdb, fleet.Options{}).History(context.Background(), "ancient", 3)
	if err != nil || len(points) != 0 {
		t.Errorf("got %d points, %v; want none: ancient is 11,000 entries back", len(points), err)
	}
	if n := counter.n.Load(); n != 20 {
		t.Errorf("read the stream in %d round trips, want 20 (10,000 entries in chunks of 500)", n)
	}
}

// TestHistoryRealWorker reads the beats of a real worker.
func TestHistoryRealWorker(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	spawnWorker(t, srv, "real")
	r := fleet.NewReader(rdb, fleet.Options{})
	var points []fleet.Point
	testbin.WaitFor(t, 10*time.Second, "three beats in the stream", func() bool {
		var err error
		points, err = r.History(context.Background(), "real", 3)
		return err == nil && len(points) == 3
	})
	for i, p := range points {
		if p.WorkerID != "real" || p.MemoryMB <= 0 || (i > 0 && !p.Timestamp.After(points[i-1].Timestamp)) {
			t.Errorf("point %d: %+v (all: %+v)", i, p, points)
		}
	}
}
