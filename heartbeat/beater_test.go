package heartbeat

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging/logtest"
)

func TestNewOptions(t *testing.T) {
	report := func() Status { return Status{Identity: Identity{WorkerID: "w"}} }
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name    string
		o       Options
		wantErr string // "" for success
	}{
		{"defaults", Options{Report: report}, ""},
		{"ttl just above interval", Options{Report: report, Interval: time.Second, TTL: 1001 * time.Millisecond}, ""},
		{"no report", Options{}, "Options.Report"},
		{"negative interval", Options{Report: report, Interval: -time.Second}, "Options.Interval"},
		{"interval too short", Options{Report: report, Interval: time.Millisecond}, "Options.Interval"},
		{"ttl equal to interval", Options{Report: report, Interval: 30 * time.Second, TTL: 30 * time.Second}, "Options.TTL"},
		{"ttl below the default interval", Options{Report: report, TTL: 10 * time.Second}, "Options.TTL"},
		{"negative stream length", Options{Report: report, StreamMaxLen: -1}, "Options.StreamMaxLen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(rdb, tt.o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: got error %v, want one naming %s", err, tt.wantErr)
			}
			if b != nil {
				t.Errorf("New: got a Beater with the error")
			}
		})
	}
	if _, err := New(nil, Options{Report: report}); err == nil {
		t.Error("New(nil client): got nil error")
	}

	b, _ := New(rdb, Options{Report: report})
	if b.o.Interval != 30*time.Second || b.o.TTL != 90*time.Second || b.o.StreamMaxLen != 10000 || b.timeout != 5*time.Second {
		t.Errorf("defaults: got interval %v, ttl %v, maxlen %d, timeout %v; want 30s, 1m30s, 10000, 5s",
			b.o.Interval, b.o.TTL, b.o.StreamMaxLen, b.timeout)
	}
}

func TestBeatWritesHash(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.start(t)

	h := f.hash(t, "worker-1")
	wantKeys := slices.Sorted(maps.Keys(stamped(f.worker).Fields()))
	if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, wantKeys) {
		t.Fatalf("hash fields:\n got %v\nwant %v", got, wantKeys)
	}
	if h["timestamp"] != "1688851200.123" || h["interval"] != "30" || h["state"] != "IDLE" {
		t.Errorf("timestamp, interval, state: got %q, %q, %q; want 1688851200.123, 30, IDLE", h["timestamp"], h["interval"], h["state"])
	}
	got, err := Decode(h)
	if err != nil {
		t.Fatalf("Decode(hash): %v", err)
	}
	if want := stamped(f.worker); !slices.Equal(slices.Sorted(maps.Values(got.Fields())), slices.Sorted(maps.Values(want.Fields()))) {
		t.Errorf("decoded hash:\n got %+v\nwant %+v", got, want)
	}

	ttl, err := f.admin.PTTL(ctx, KeyPrefix+"worker-1").Result()
	if err != nil || ttl <= 0 || ttl > 90*time.Second {
		t.Errorf("PTTL: got %v (%v), want in (0, 90s]", ttl, err)
	}
	if f.b.LastSuccess() != epoch || f.b.Failures() != 0 {
		t.Errorf("LastSuccess, Failures: got %v, %d; want %v, 0", f.b.LastSuccess(), f.b.Failures(), epoch)
	}
	if err := f.b.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}

	// A field the next beat does not write (here one left by an older
	// version) vanishes, and the timestamp and TTL move on.
	f.admin.HSet(ctx, KeyPrefix+"worker-1", "legacy_field", "x")
	f.worker.set(func(s *Status) { s.State, s.CurrentJob = "BUSY", "job-9" })
	f.clock.Advance(30 * time.Second)
	waitBeats(t, f.clock, 2)
	h = f.hash(t, "worker-1")
	if _, ok := h["legacy_field"]; ok {
		t.Error("legacy_field survived a beat")
	}
	if h["timestamp"] != "1688851230.123" || h["state"] != "BUSY" || h["current_job"] != "job-9" {
		t.Errorf("second beat: got timestamp %q, state %q, current_job %q", h["timestamp"], h["state"], h["current_job"])
	}
}

func TestBeatTTL(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		ttl      time.Duration
	}{
		{"default, three intervals", 30 * time.Second, 0},
		{"whole seconds", 10 * time.Second, 25 * time.Second},
		{"fraction of a second", 1500 * time.Millisecond, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Interval, o.TTL = tt.interval, tt.ttl })
			f.start(t)
			want := tt.ttl
			if want == 0 {
				want = 3 * tt.interval
			}
			got, err := f.admin.PTTL(context.Background(), KeyPrefix+"worker-1").Result()
			if err != nil || got <= 0 || got > want || got < want-time.Second {
				t.Errorf("PTTL: got %v (%v), want just under %v", got, err, want)
			}
		})
	}
}

func TestOneTransactionPerBeat(t *testing.T) {
	c := &counter{}
	f := newFixture(t, nil, c)
	ctx := context.Background()
	if err := f.admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	f.clock.Advance(30 * time.Second)
	waitBeats(t, f.clock, 2)
	f.clock.Advance(30 * time.Second)
	waitBeats(t, f.clock, 3)
	f.b.Trigger()
	waitBeats(t, f.clock, 4)

	if got := c.commands.Load(); got != 0 {
		t.Errorf("single commands sent: got %d, want 0", got)
	}
	if got := c.handshakes.Load(); got > 3 {
		t.Errorf("handshake round trips: got %d, want at most 3 (one connection)", got)
	}
	if got := c.pipelines.Load(); got != 4 {
		t.Errorf("round trips for 4 beats: got %d, want 4", got)
	}
	want := []string{"multi", "del", "hset", "expire", "zadd", "xadd", "exec"}
	for i, names := range c.pipelineNames() {
		if !slices.Equal(names, want) {
			t.Errorf("beat %d sent %v, want %v", i+1, names, want)
		}
	}
	if got := execCalls(t, f.admin); got != 4 {
		t.Errorf("cmdstat_exec calls: got %d, want 4 (one per beat)", got)
	}
	if n := info(t, f.admin, "commandstats")["cmdstat_multi"]; !strings.HasPrefix(n, "calls=4,") {
		t.Errorf("cmdstat_multi: got %q, want calls=4", n)
	}
}

func TestIndexScore(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.start(t)
	score := func() float64 {
		t.Helper()
		s, err := f.admin.ZScore(ctx, IndexKey, "worker-1").Result()
		if err != nil {
			t.Fatalf("ZSCORE: %v", err)
		}
		return s
	}
	if got := score(); got != 1688851200.123 {
		t.Errorf("index score: got %f, want 1688851200.123", got)
	}
	f.clock.Advance(30 * time.Second)
	waitBeats(t, f.clock, 2)
	if got := score(); got != 1688851230.123 {
		t.Errorf("index score after a beat: got %f, want 1688851230.123", got)
	}
	if n := f.admin.ZCard(ctx, IndexKey).Val(); n != 1 {
		t.Errorf("index members: got %d, want 1", n)
	}
}

func TestStreamCapped(t *testing.T) {
	const maxLen, nodeEntries, beats = 20, 10, 200
	f := newFixture(t, func(o *Options) { o.StreamMaxLen = maxLen })
	ctx := context.Background()
	// MAXLEN ~ trims whole stream nodes: a small node size keeps the
	// stream's length within one node of the cap.
	if err := f.admin.ConfigSet(ctx, "stream-node-max-entries", "10").Err(); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	for i := 2; i <= beats; i++ {
		f.b.Trigger()
		waitBeats(t, f.clock, i)
	}
	n, err := f.admin.XLen(ctx, StreamKey).Result()
	if err != nil || n < maxLen || n > maxLen+nodeEntries {
		t.Errorf("XLEN after %d beats: got %d (%v), want between %d and %d", beats, n, err, maxLen, maxLen+nodeEntries)
	}
	last, err := f.admin.XRevRangeN(ctx, StreamKey, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("XREVRANGE: %v, %v", last, err)
	}
	if _, err := Decode(stringValues(last[0].Values)); err != nil {
		t.Errorf("last stream entry: %v", err)
	}
}

func stringValues(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

func TestTriggerBeatsAtOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.start(t)
	f.worker.set(func(s *Status) { s.State, s.CurrentJob = "BUSY", "job-1" })
	f.b.Trigger() // the clock does not move: no tick is due
	waitBeats(t, f.clock, 2)
	if h := f.hash(t, "worker-1"); h["state"] != "BUSY" || h["current_job"] != "job-1" {
		t.Errorf("after Trigger: got state %q, current_job %q; want BUSY, job-1", h["state"], h["current_job"])
	}
}

func TestTriggersCoalesce(t *testing.T) {
	c := &counter{}
	f := newFixture(t, nil, c)
	f.start(t)

	entered, release := c.hold()
	f.b.Trigger()
	<-entered // beat 2 is in flight, held
	for range 10 {
		f.b.Trigger()
	}
	close(release)
	waitBeats(t, f.clock, 3) // the ten triggers made one more beat
	if n := len(f.b.trigger); n != 0 {
		t.Errorf("triggers pending after the coalesced beat: got %d, want 0", n)
	}
	if got := c.pipelines.Load(); got != 3 {
		t.Errorf("beats: got %d, want 3", got)
	}

	// Many goroutines triggering while the clock ticks: never two beats
	// in flight.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				f.b.Trigger()
			}
		})
	}
	for range 5 {
		f.clock.Advance(30 * time.Second)
	}
	wg.Wait()
	if err := f.b.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := c.maxFlight.Load(); got != 1 {
		t.Errorf("beats in flight at once: got %d, want 1", got)
	}
}

func TestOutage(t *testing.T) {
	rec := logtest.NewRecorder()
	f := newFixture(t, func(o *Options) { o.Logger = rec.Logger() })
	ctx := context.Background()
	f.start(t)

	f.srv.Stop(t)
	const failed = 4
	for i := 1; i <= failed; i++ {
		// Every retry delay is capped at the interval.
		f.clock.Advance(30 * time.Second)
		waitBeats(t, f.clock, 1+i)
	}
	if got := f.b.Failures(); got != failed {
		t.Errorf("Failures: got %d, want %d", got, failed)
	}
	if got := countLevel(rec, slog.LevelWarn); got != 1 {
		t.Errorf("warnings during the outage: got %d, want 1: %v", got, rec.Messages())
	}
	err := f.b.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "last beat failed") {
		t.Errorf("Check during the outage: got %v, want a failed-beat error", err)
	}
	f.b.Trigger() // waits for the next retry: no extra attempt
	if f.b.LastSuccess() != epoch {
		t.Errorf("LastSuccess: got %v, want the first beat's %v", f.b.LastSuccess(), epoch)
	}

	f.srv.Restart(t) // empty: the hash is gone
	f.clock.Advance(30 * time.Second)
	waitBeats(t, f.clock, failed+2)
	h := f.hash(t, "worker-1")
	if _, err := Decode(h); err != nil {
		t.Fatalf("hash after recovery: %v (%v)", err, h)
	}
	if want := "1688851350.123"; h["timestamp"] != want {
		t.Errorf("timestamp after recovery: got %q, want %q", h["timestamp"], want)
	}
	if err := f.b.Check(ctx); err != nil {
		t.Errorf("Check after recovery: %v", err)
	}
	if got := f.b.Failures(); got != failed {
		t.Errorf("Failures after recovery: got %d, want %d", got, failed)
	}
	var recovered []logtest.Record
	for _, r := range rec.Records() {
		if r.Level == slog.LevelInfo {
			recovered = append(recovered, r)
		}
	}
	if len(recovered) != 1 {
		t.Fatalf("info lines: got %d, want 1 recovery line: %v", len(recovered), rec.Messages())
	}
	if got, want := recovered[0].Attrs["outage"], failed*30*time.Second; got != want {
		t.Errorf("outage length: got %v, want %v (first failure to recovery)", got, want)
	}
	if got := countLevel(rec, slog.LevelWarn); got != 1 {
		t.Errorf("warnings in all: got %d, want 1", got)
	}
}

func TestSlowRedis(t *testing.T) {
	rec := logtest.NewRecorder()
	f := newFixture(t, func(o *Options) { o.Interval, o.Logger = time.Second, rec.Logger() })
	ctx := context.Background()
	f.start(t)

	// Redis holds every write: the beat gives up after its timeout,
	// min(Interval, 5s), and the loop goes on.
	if err := f.admin.Do(ctx, "CLIENT", "PAUSE", "60000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	f.b.Trigger()
	waitBeats(t, f.clock, 2)
	if got := f.b.Failures(); got != 1 {
		t.Errorf("Failures: got %d, want 1", got)
	}
	if err := f.b.Check(ctx); err == nil || !strings.Contains(err.Error(), "timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Errorf("Check while Redis is slow: got %v, want a timeout", err)
	}
	if err := f.admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second) // the retry delay is at most the interval
	waitBeats(t, f.clock, 3)
	if err := f.b.Check(ctx); err != nil {
		t.Errorf("Check after Redis sped up: %v", err)
	}
	if got := countLevel(rec, slog.LevelWarn); got != 1 {
		t.Errorf("warnings: got %d, want 1", got)
	}
}

func countLevel(rec *logtest.Recorder, level slog.Level) int {
	n := 0
	for _, r := range rec.Records() {
		if r.Level == level {
			n++
		}
	}
	return n
}

func TestFirstBeatFailureIsNotFatal(t *testing.T) {
	rec := logtest.NewRecorder()
	f := newFixture(t, func(o *Options) { o.Logger = rec.Logger() })
	f.srv.Stop(t)
	f.start(t) // Start returns nil although the beat failed
	if f.b.Failures() != 1 || !f.b.LastSuccess().IsZero() {
		t.Errorf("Failures, LastSuccess: got %d, %v; want 1, zero", f.b.Failures(), f.b.LastSuccess())
	}
	if err := f.b.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "no beat written yet") {
		t.Errorf("Check: got %v, want no beat written yet", err)
	}
	f.srv.Restart(t)
	f.clock.Advance(30 * time.Second)
	waitBeats(t, f.clock, 2)
	if len(f.hash(t, "worker-1")) == 0 {
		t.Error("no hash after Redis came up")
	}
	if got := countLevel(rec, slog.LevelWarn); got != 1 {
		t.Errorf("warnings: got %d, want 1", got)
	}
}

func TestCheck(t *testing.T) {
	clock := newFakeClock()
	b, err := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Options{Report: newWorker("w").Report, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Check(ctx); err == nil || !strings.Contains(err.Error(), "no beat attempted") {
		t.Errorf("Check before Start: got %v", err)
	}
	b.attempted, b.lastSuccess = true, clock.Now()
	clock.Advance(59 * time.Second)
	if err := b.Check(ctx); err != nil {
		t.Errorf("Check 59s after a 30s beat: %v", err)
	}
	clock.Advance(time.Second)
	if err := b.Check(ctx); err == nil || !strings.Contains(err.Error(), "2 x the 30s interval") {
		t.Errorf("Check 60s after a 30s beat: got %v, want a stale-beat error", err)
	}
}

func TestStop(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.start(t)
	f.worker.set(func(s *Status) { s.State = "STOPPING" })
	f.b.Trigger()
	waitBeats(t, f.clock, 2)

	if err := f.b.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	last, err := f.admin.XRevRangeN(ctx, StreamKey, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("XREVRANGE: %v, %v", last, err)
	}
	s, err := Decode(stringValues(last[0].Values))
	if err != nil || s.State != "STOPPED" || s.WorkerID != "worker-1" {
		t.Errorf("last stream entry: got %+v (%v), want worker-1 STOPPED", s, err)
	}
	if n := f.admin.XLen(ctx, StreamKey).Val(); n != 3 {
		t.Errorf("stream entries: got %d, want 3 (two beats and STOPPED)", n)
	}
	if n := f.admin.Exists(ctx, KeyPrefix+"worker-1").Val(); n != 0 {
		t.Error("hash still exists after Stop")
	}
	if err := f.admin.ZScore(ctx, IndexKey, "worker-1").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("ZSCORE after Stop: got %v, want redis.Nil (worker left the index)", err)
	}

	if err := f.b.Stop(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("second Stop: got %v, want ErrStopped", err)
	}
	if err := f.b.Start(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop: got %v, want ErrStopped", err)
	}
	if err := f.b.Check(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Check after Stop: got %v, want ErrStopped", err)
	}
	f.b.Trigger() // harmless
	if n := f.admin.XLen(ctx, StreamKey).Val(); n != 3 {
		t.Errorf("stream entries after a late Trigger: got %d, want 3", n)
	}
}

func TestStopWhileRedisIsDown(t *testing.T) {
	f := newFixture(t, nil)
	f.start(t)
	f.srv.Stop(t)
	err := f.b.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "TTL") {
		t.Errorf("Stop with Redis down: got %v, want an error saying the TTL will expire the hash", err)
	}
}

func TestStartTwice(t *testing.T) {
	f := newFixture(t, nil)
	f.start(t)
	if err := f.b.Start(context.Background()); err == nil {
		t.Error("second Start: got nil error")
	}
}

func TestCancelledContextEndsLoop(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := f.b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-f.b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("loop still running after its context was cancelled")
	}
	if f.b.Failures() != 0 {
		t.Errorf("Failures after cancel: got %d, want 0", f.b.Failures())
	}
	// The hash stays, to expire by its TTL; Stop still deregisters.
	if len(f.hash(t, "worker-1")) == 0 {
		t.Error("hash gone after cancel, want it left to its TTL")
	}
	if err := f.b.Stop(context.Background()); err != nil {
		t.Errorf("Stop after cancel: %v", err)
	}
	if len(f.hash(t, "worker-1")) != 0 {
		t.Error("hash still there after Stop")
	}
}
