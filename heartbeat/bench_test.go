package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
)

// BenchmarkBeat measures one beat against a local redis-server and reports
// the round trips it takes (target 1) and the EXEC commands Redis ran per
// beat.
func BenchmarkBeat(b *testing.B) {
	srv := redistest.Start(b)
	rdb := newClient(b, srv)
	admin := srv.Client(b)
	c := &counter{}
	rdb.AddHook(c)
	beater, err := New(rdb, Options{Report: newWorker("worker-1").Report, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := beater.beat(ctx); err != nil { // connects
		b.Fatal(err)
	}
	c.pipelines.Store(0)
	c.commands.Store(0)
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := beater.beat(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(c.pipelines.Load()+c.commands.Load()+c.handshakes.Load())/float64(n), "round-trips/beat")
	b.ReportMetric(float64(execCalls(b, admin))/float64(n), "exec/beat")
}

// BenchmarkMemoryPerWorker registers 3000 simulated workers on a fresh
// redis-server and reports Redis memory per worker: used_memory growth
// without the stream (bytes/worker) and MEMORY USAGE of one hash
// (hash-bytes). ns/op is the time to register all of them, one beat each.
func BenchmarkMemoryPerWorker(b *testing.B) {
	var m workerMemory
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b)
		rdb := srv.Client(b)
		b.StartTimer()
		m = measureWorkerMemory(b, rdb, 3000)
		b.StopTimer()
		srv.Stop(b)
		b.StartTimer()
	}
	b.ReportMetric(m.perWorker, "bytes/worker")
	b.ReportMetric(float64(m.hash), "hash-bytes")
	b.ReportMetric(float64(m.streamPerEntry), "stream-bytes/entry")
}

// TestMemoryPerWorker checks the memory target: under 2 KiB of Redis per
// registered worker, besides the capped stream.
func TestMemoryPerWorker(t *testing.T) {
	const n = 3000 // fewer would weigh Redis's fixed costs on each
	srv := redistest.Start(t)
	m := measureWorkerMemory(t, srv.Client(t), n)
	t.Logf("%d workers: %.0f bytes/worker (hash, TTL, index entry), MEMORY USAGE of one hash %d bytes, stream %.0f bytes/entry",
		n, m.perWorker, m.hash, m.streamPerEntry)
	if m.perWorker >= 2048 {
		t.Errorf("Redis memory per worker: got %.0f bytes, want under 2048", m.perWorker)
	}
}

type workerMemory struct {
	perWorker      float64 // used_memory growth per worker, stream excluded
	hash           int64   // MEMORY USAGE of one worker's hash
	streamPerEntry float64 // MEMORY USAGE of the stream per entry
}

// measureWorkerMemory empties rdb's server, registers n workers with one
// beat each, and measures what they cost.
func measureWorkerMemory(tb testing.TB, rdb *redis.Client, n int) workerMemory {
	tb.Helper()
	ctx := context.Background()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		tb.Fatal(err)
	}
	usedMemory := func() int64 {
		tb.Helper()
		v, err := strconv.ParseInt(info(tb, rdb, "memory")["used_memory"], 10, 64)
		if err != nil {
			tb.Fatalf("used_memory: %v", err)
		}
		return v
	}
	before := usedMemory()
	clock := newFakeClock()
	for i := range n {
		w := simulatedWorker(i)
		b, err := New(rdb, Options{Report: w.Report, Clock: clock, StreamMaxLen: int64(n) + 1000})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := b.beat(ctx); err != nil {
			tb.Fatal(err)
		}
		clock.Advance(time.Millisecond)
	}
	var m workerMemory
	m.hash = rdb.MemoryUsage(ctx, KeyPrefix+simulatedID(n/2), 0).Val() // 0: count every field, do not sample
	m.streamPerEntry = float64(rdb.MemoryUsage(ctx, StreamKey, 0).Val()) / float64(rdb.XLen(ctx, StreamKey).Val())
	if err := rdb.Del(ctx, StreamKey).Err(); err != nil {
		tb.Fatal(err)
	}
	m.perWorker = float64(usedMemory()-before) / float64(n)
	if got := rdb.ZCard(ctx, IndexKey).Val(); got != int64(n) {
		tb.Fatalf("index: got %d workers, want %d", got, n)
	}
	return m
}

func simulatedID(i int) string { return fmt.Sprintf("worker-%04d", i) }

// simulatedWorker is a realistic busy worker: every field set, as a
// fleet in production would write them.
func simulatedWorker(i int) *worker {
	w := newWorker(simulatedID(i))
	w.set(func(s *Status) {
		s.State = StateBusy.String()
		s.Hostname = fmt.Sprintf("bot-server-%02d", i%40)
		s.ContainerID = fmt.Sprintf("%012x", 0xa1b2c3000000+i)
		s.CurrentJob = fmt.Sprintf("browser.navigate.%06x", i*7919)
		s.MetricsURL = fmt.Sprintf("http://10.0.%d.%d:9200/metrics", i/250, i%250)
		s.JobsProcessed, s.JobsFailed = uint64(1000+i), uint64(i%17)
		s.Resources = Resources{MemoryMB: 245.7 + float64(i%100)/10, MemoryPercent: 2.4, CPUPercent: 15.3, NumThreads: 12, OpenFiles: 9 + i%5}
		s.System.Hostname, s.System.PID = s.Hostname, 1000+i
	})
	return w
}
