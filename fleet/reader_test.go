package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// TestListRealAndHandWrittenWorkers lists two real `botfleet worker`
// processes and two workers written with redis-cli in the wire format.
func TestListRealAndHandWrittenWorkers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	goA := spawnWorker(t, srv, "go-a")
	spawnWorker(t, srv, "go-b")
	now := redisNow(t, rdb)
	writeBeat(t, srv, beat{id: "py-1", at: now})
	writeBeat(t, srv, beat{id: "py-2", state: "BUSY", at: now})

	r := fleet.NewReader(rdb, fleet.Options{})
	var f fleet.Fleet
	testbin.WaitFor(t, 10*time.Second, "both real workers alive and IDLE", func() bool {
		f = list(t, r)
		return len(f.Workers) == 4 && f.Summary.ByState["IDLE"] == 3
	})
	if got, want := ids(f), []string{"go-a", "go-b", "py-1", "py-2"}; !slices.Equal(got, want) {
		t.Errorf("ids: got %v, want %v", got, want)
	}
	want := fleet.Summary{Total: 4, Alive: 4, ByState: map[string]int{"STARTING": 0, "IDLE": 3, "BUSY": 1, "STOPPING": 0, "STOPPED": 0}}
	if fmt.Sprint(f.Summary) != fmt.Sprint(want) {
		t.Errorf("summary: got %+v, want %+v", f.Summary, want)
	}
	if d := f.GeneratedAt.Sub(now); d < 0 || d > 10*time.Second {
		t.Errorf("GeneratedAt %v is not Redis's time (%v)", f.GeneratedAt, now)
	}

	a := find(t, f, "go-a")
	if a.Service != "worker" || a.MetricsURL != fmt.Sprintf("http://127.0.0.1:%d/metrics", goA.port) ||
		a.Interval != 500*time.Millisecond || a.Resources.MemoryMB <= 0 || a.System.PID == 0 || a.Uptime <= 0 {
		t.Errorf("real worker: got %+v", a)
	}
	py := find(t, f, "py-1")
	if py.Hostname != "bot-server-01" || py.Region != "us-west-1" || py.Version != "v1.4.2" || py.Interval != 30*time.Second ||
		py.JobsProcessed != 42 || py.JobsFailed != 3 || py.Resources.MemoryMB != 245.7 || py.System.PID != 4242 ||
		py.MetricsURL != "http://10.0.3.17:9200/metrics" {
		t.Errorf("hand-written worker: got %+v", py)
	}
	for _, w := range f.Workers {
		if w.Health != fleet.Alive || w.Error != "" || w.ClockSkew != 0 || w.LastBeatAge < 0 || w.LastBeatAge > 5*time.Second {
			t.Errorf("%s: health %q, error %q, skew %v, age %v; want alive, recent, no skew", w.WorkerID, w.Health, w.Error, w.ClockSkew, w.LastBeatAge)
		}
	}
	if up := py.Uptime; up < time.Hour || up > time.Hour+5*time.Second {
		t.Errorf("py-1 uptime: got %v, want about 1h (started_at an hour before its beat)", up)
	}
}

// TestStaleness judges hand-written beats of various ages by their own
// interval, at an exact time (Options.Now) and on Redis's clock.
func TestStaleness(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	now := redisNow(t, rdb).Truncate(time.Millisecond)
	tests := []struct {
		name     string
		interval string
		age      time.Duration
		want     string
	}{
		{"just beat", "30", 0, fleet.Alive},
		{"one interval", "30", 30 * time.Second, fleet.Alive},
		{"exactly 1.5 intervals", "30", 45 * time.Second, fleet.Alive},
		{"a millisecond past 1.5 intervals", "30", 45*time.Second + time.Millisecond, fleet.Stale},
		{"2 intervals", "30", 60 * time.Second, fleet.Stale},
		{"2 intervals of a fast worker", "0.5", time.Second, fleet.Stale},
		{"the same age, a slow worker", "120", time.Second, fleet.Alive},
	}
	for i, tt := range tests {
		writeBeat(t, srv, beat{id: fmt.Sprintf("w%d", i), interval: tt.interval, at: now.Add(-tt.age), ttl: 600})
	}
	fixed := list(t, fleet.NewReader(rdb, fleet.Options{Now: func() time.Time { return now }}))
	live := list(t, fleet.NewReader(rdb, fleet.Options{}))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := find(t, fixed, fmt.Sprintf("w%d", i))
			if w.Health != tt.want || w.LastBeatAge != tt.age {
				t.Errorf("at a fixed time: got %s, age %v; want %s, age %v", w.Health, w.LastBeatAge, tt.want, tt.age)
			}
			// On Redis's clock, time has moved on a little: only the clear
			// cases are certain.
			if tt.age == 0 || tt.age >= 60*time.Second {
				if w := find(t, live, fmt.Sprintf("w%d", i)); w.Health != tt.want {
					t.Errorf("on Redis's clock: got %s, want %s", w.Health, tt.want)
				}
			}
		})
	}
	if got := fixed.Summary; got.Alive != 4 || got.Stale != 3 || got.ByState["IDLE"] != 4 {
		t.Errorf("summary: got %+v, want 4 alive (all IDLE), 3 stale", got)
	}
}

// TestPrune lists an index naming a worker whose hash is gone.
func TestPrune(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	writeBeat(t, srv, beat{id: "here", at: redisNow(t, rdb)})
	srv.CLI(t, "", "ZADD", heartbeat.IndexKey, "1688851200.123", "ghost")

	f := list(t, fleet.NewReader(rdb, fleet.Options{}))
	if got := ids(f); !slices.Equal(got, []string{"here"}) {
		t.Errorf("listed %v, want [here]", got)
	}
	if err := rdb.ZScore(ctx, heartbeat.IndexKey, "ghost").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("ghost is still in %s (ZSCORE: %v)", heartbeat.IndexKey, err)
	}
	if err := rdb.ZScore(ctx, heartbeat.IndexKey, "here").Err(); err != nil {
		t.Errorf("a live worker left the index: %v", err)
	}
}

// TestMalformedHashes lists hashes that break the wire format, written with
// redis-cli, next to a good one.
func TestMalformedHashes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	now := fmt.Sprintf("%.3f", float64(redisNow(t, rdb).UnixMilli())/1e3)
	writeBeat(t, srv, beat{id: "good", at: redisNow(t, rdb)})
	tests := []struct {
		id      string
		command []string // written at worker:heartbeat:<id>
		want    []string // in the reason
	}{
		{"bad-state", []string{"HSET", "worker_id", "bad-state", "state", "DANCING", "timestamp", now, "interval", "30"}, []string{`"state"`, "DANCING"}},
		{"bad-time", []string{"HSET", "worker_id", "bad-time", "state", "IDLE", "timestamp", "yesterday", "interval", "30"}, []string{`"timestamp"`, "yesterday"}},
		{"no-interval", []string{"HSET", "worker_id", "no-interval", "state", "IDLE", "timestamp", now}, []string{`"interval"`, "missing"}},
		{"zero-interval", []string{"HSET", "worker_id", "zero-interval", "state", "IDLE", "timestamp", now, "interval", "0"}, []string{`"interval"`}},
		{"bad-resources", []string{"HSET", "worker_id", "bad-resources", "state", "IDLE", "timestamp", now, "interval", "30", "resources", "[1,2]"}, []string{`"resources"`, "JSON object"}},
		{"bad-count", []string{"HSET", "worker_id", "bad-count", "state", "IDLE", "timestamp", now, "interval", "30", "jobs_failed", "-1"}, []string{`"jobs_failed"`}},
		{"other-id", []string{"HSET", "worker_id", "someone-else", "state", "IDLE", "timestamp", now, "interval", "30"}, []string{`"worker_id"`, "someone-else"}},
		{"not-a-hash", []string{"SET", "hello"}, []string{"WRONGTYPE"}},
	}
	for _, tt := range tests {
		args := append([]string{tt.command[0], heartbeat.KeyPrefix + tt.id}, tt.command[1:]...)
		srv.CLI(t, "", args...)
		srv.CLI(t, "", "ZADD", heartbeat.IndexKey, now, tt.id)
	}

	f, err := fleet.NewReader(rdb, fleet.Options{}).List(context.Background())
	if err != nil {
		t.Fatalf("List failed on malformed hashes: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			w := find(t, f, tt.id)
			if w.Health != fleet.Invalid {
				t.Errorf("health: got %q, want invalid", w.Health)
			}
			for _, s := range tt.want {
				if !strings.Contains(w.Error, s) {
					t.Errorf("reason %q lacks %s", w.Error, s)
				}
			}
		})
	}
	if w := find(t, f, "good"); w.Health != fleet.Alive {
		t.Errorf("the good worker: got %s, want alive", w.Health)
	}
	if got := f.Summary; got.Total != len(tests)+1 || got.Invalid != len(tests) || got.Alive != 1 {
		t.Errorf("summary: got %+v", got)
	}
}

// TestClockSkew lists a worker whose clock is 30 s ahead of Redis's.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	start := redisNow(t, rdb).Truncate(time.Millisecond)
	const skew = 30 * time.Second
	writeBeat(t, srv, beat{id: "ahead", interval: "1", at: start.Add(skew), ttl: 600})

	t.Run("at fixed times", func(t *testing.T) {
		now := start
		r := fleet.NewReader(rdb, fleet.Options{Now: func() time.Time { return now }})
		steps := []struct {
			name   string
			after  time.Duration // since start
			health string
			age    time.Duration
		}{
			{"first read", 0, fleet.Alive, 0},
			{"one interval later", time.Second, fleet.Alive, time.Second},
			{"two intervals later", 2 * time.Second, fleet.Stale, 2 * time.Second},
			{"once Redis's clock passed the timestamp", skew + time.Second, fleet.Stale, skew + time.Second},
		}
		for _, s := range steps {
			now = start.Add(s.after)
			w := find(t, list(t, r), "ahead")
			if w.Health != s.health || w.LastBeatAge != s.age || w.ClockSkew != skew {
				t.Errorf("%s: got %s, age %v, skew %v; want %s, age %v, skew %v", s.name, w.Health, w.LastBeatAge, w.ClockSkew, s.health, s.age, skew)
			}
		}
		// A new beat, still 30 s ahead, is alive again.
		now = start.Add(40 * time.Second)
		writeBeat(t, srv, beat{id: "ahead", interval: "1", at: now.Add(skew), ttl: 600})
		if w := find(t, list(t, r), "ahead"); w.Health != fleet.Alive || w.ClockSkew != skew {
			t.Errorf("after a new beat: got %s, skew %v; want alive, skew %v", w.Health, w.ClockSkew, skew)
		}
	})

	t.Run("on Redis's clock", func(t *testing.T) {
		writeBeat(t, srv, beat{id: "ahead", interval: "1", at: redisNow(t, rdb).Add(skew), ttl: 600})
		r := fleet.NewReader(rdb, fleet.Options{})
		w := find(t, list(t, r), "ahead")
		if w.Health != fleet.Alive || w.ClockSkew < skew-2*time.Second || w.ClockSkew > skew {
			t.Errorf("first read: got %s, skew %v; want alive, skew about %v", w.Health, w.ClockSkew, skew)
		}
		testbin.WaitFor(t, 10*time.Second, "the beat from the future to turn stale", func() bool {
			return find(t, list(t, r), "ahead").Health == fleet.Stale
		})
	})
}

// TestKilledWorker follows a real worker killed with kill -9: stale within
// 1.5 intervals, then gone (and out of the index) once its hash expires.
func TestKilledWorker(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	victim := spawnWorker(t, srv, "victim")
	spawnWorker(t, srv, "survivor")
	r := fleet.NewReader(rdb, fleet.Options{})
	testbin.WaitFor(t, 10*time.Second, "both workers alive", func() bool {
		return list(t, r).Summary.Alive == 2
	})

	victim.proc.Signal(t, syscall.SIGKILL)
	victim.proc.Wait(t, 5*time.Second)
	testbin.WaitFor(t, 5*time.Second, "the killed worker to turn stale", func() bool {
		return find(t, list(t, r), "victim").Health == fleet.Stale
	})
	testbin.WaitFor(t, 5*time.Second, "the killed worker to be gone", func() bool {
		return !slices.Contains(ids(list(t, r)), "victim")
	})
	if err := rdb.ZScore(context.Background(), heartbeat.IndexKey, "victim").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("the killed worker is still in the index: %v", err)
	}
	if w := find(t, list(t, r), "survivor"); w.Health != fleet.Alive {
		t.Errorf("survivor: got %s, want alive", w.Health)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	now := redisNow(t, rdb).Truncate(time.Millisecond)
	writeBeat(t, srv, beat{id: "one", state: "BUSY", at: now.Add(-time.Minute)})
	r := fleet.NewReader(rdb, fleet.Options{Now: func() time.Time { return now }})
	ctx := context.Background()

	w, err := r.Get(ctx, "one")
	if err != nil || w.WorkerID != "one" || w.State != "BUSY" || w.Health != fleet.Stale || w.LastBeatAge != time.Minute {
		t.Errorf("Get(one): got %+v, %v", w, err)
	}
	if _, err := r.Get(ctx, "nobody"); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("Get(nobody): got %v, want ErrNotFound", err)
	}
	srv.CLI(t, "", "SET", heartbeat.KeyPrefix+"str", "x")
	if w, err := r.Get(ctx, "str"); err != nil || w.Health != fleet.Invalid || !strings.Contains(w.Error, "WRONGTYPE") {
		t.Errorf("Get(str): got %+v, %v; want invalid, WRONGTYPE", w, err)
	}
}

// TestRedisDown: the reader returns errors, never panics, and works again
// once Redis is back.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := noRetryClient(t, srv)
	r := fleet.NewReader(rdb, fleet.Options{})
	ctx := context.Background()
	srv.Stop(t)
	if _, err := r.List(ctx); err == nil {
		t.Error("List with Redis down: no error")
	}
	if _, err := r.Get(ctx, "x"); err == nil || errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("Get with Redis down: got %v, want a connection error", err)
	}
	if _, err := r.History(ctx, "", 5); err == nil {
		t.Error("History with Redis down: no error")
	}
	srv.Restart(t)
	writeBeat(t, srv, beat{id: "back", at: redisNow(t, rdb)})
	if got := ids(list(t, r)); !slices.Equal(got, []string{"back"}) {
		t.Errorf("after the restart: got %v", got)
	}
}

// TestListBatches lists more workers than a batch, with a few gone, and
// counts the round trips.
func TestListBatches(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	const n = 1050
	now := redisNow(t, rdb)
	writeBeats(t, rdb, n, now)
	for _, id := range []string{"w-00000", "w-00500", "w-01049"} {
		rdb.Del(context.Background(), heartbeat.KeyPrefix+id)
	}
	counter := &roundTrips{}
	rdb.AddHook(counter)
	f := list(t, fleet.NewReader(rdb, fleet.Options{BatchSize: 100}))
	if f.Summary.Total != n-3 || f.Summary.Alive != n-3 {
		t.Errorf("summary: got %+v, want %d alive", f.Summary, n-3)
	}
	if !slices.IsSortedFunc(f.Workers, func(a, b fleet.Worker) int { return strings.Compare(a.WorkerID, b.WorkerID) }) {
		t.Error("workers are not sorted by id")
	}
	// index + ceil(1050/100) batches + one prune.
	if got, want := counter.n.Load(), int64(1+11+1); got != want {
		t.Errorf("round trips: got %d, want %d", got, want)
	}
	if n := rdb.ZCard(context.Background(), heartbeat.IndexKey).Val(); n != 1047 {
		t.Errorf("index after pruning: got %d members, want 1047", n)
	}
}

// TestListSeesEveryChange: a Reader that listed a hash before reads its
// changes, also one that keeps the timestamp.
func TestListSeesEveryChange(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	now := redisNow(t, rdb)
	writeBeat(t, srv, beat{id: "w", at: now})
	r := fleet.NewReader(rdb, fleet.Options{})
	steps := []struct {
		name   string
		change func()
		check  func(fleet.Worker) bool
	}{
		{"first read", func() {}, func(w fleet.Worker) bool { return w.State == "IDLE" && w.Health == fleet.Alive }},
		{"a new beat", func() { writeBeat(t, srv, beat{id: "w", state: "BUSY", at: now.Add(time.Second)}) },
			func(w fleet.Worker) bool {
				return w.State == "BUSY" && w.Timestamp.Equal(now.Add(time.Second).Truncate(time.Millisecond))
			}},
		{"one field rewritten in place", func() { srv.CLI(t, "", "HSET", heartbeat.KeyPrefix+"w", "jobs_failed", "9") },
			func(w fleet.Worker) bool { return w.JobsFailed == 9 && w.State == "BUSY" }},
		{"broken in place", func() { srv.CLI(t, "", "HSET", heartbeat.KeyPrefix+"w", "state", "NAPPING") },
			func(w fleet.Worker) bool { return w.Health == fleet.Invalid && strings.Contains(w.Error, "NAPPING") }},
		{"mended", func() { srv.CLI(t, "", "HSET", heartbeat.KeyPrefix+"w", "state", "IDLE") },
			func(w fleet.Worker) bool { return w.Health == fleet.Alive && w.State == "IDLE" && w.JobsFailed == 9 }},
	}
	for _, s := range steps {
		s.change()
		if w := find(t, list(t, r), "w"); !s.check(w) {
			t.Errorf("%s: List got %+v", s.name, w)
		}
		if w, err := r.Get(context.Background(), "w"); err != nil || !s.check(w) {
			t.Errorf("%s: Get got %+v, %v", s.name, w, err)
		}
	}
}
