package fleet_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
)

// roundTrips is a go-redis hook counting round trips: one per command sent
// alone, one per pipeline, leaving out the handshake of a new connection
// (HELLO, CLIENT ...), which go-redis also sends through the hooks.
type roundTrips struct{ n atomic.Int64 }

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !handshake(c) }) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

var _ redis.Hook = (*roundTrips)(nil)

// writeBeats registers n workers, w-00000 and on, as a fleet of real
// workers would: each a heartbeat hash in the wire format (heartbeat's own
// encoding), its TTL and its index entry, written in pipelines of 1,000.
func writeBeats(tb testing.TB, rdb *redis.Client, n int, at time.Time) {
	tb.Helper()
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			s := heartbeat.Status{
				Identity: heartbeat.Identity{WorkerID: fmt.Sprintf("w-%05d", i), Service: "worker",
					Hostname: fmt.Sprintf("host-%03d", i%200), ContainerID: "a1b2c3d4e5f6", DeploymentEnv: "production",
					Region: "us-west-1", Version: "v1.4.2"},
				State: []string{"IDLE", "BUSY"}[i%2], Timestamp: at, StartedAt: at.Add(-time.Hour), Interval: 30 * time.Second,
				JobsProcessed: uint64(i), JobsFailed: uint64(i % 7), CurrentJob: fmt.Sprintf("browser.navigate.%d", i),
				MetricsURL: "http://" + net.JoinHostPort(fmt.Sprintf("10.0.%d.%d", i/250, i%250), "9200") + "/metrics",
				Resources:  heartbeat.Resources{MemoryMB: 245.7, MemoryPercent: 2.4, CPUPercent: 15.3, NumThreads: 12, OpenFiles: 9},
				System:     heartbeat.System{Hostname: "bot-server-01", Platform: "linux-6.1.0-amd64", GoVersion: "go1.26.0", PID: 4242},
			}
			key := heartbeat.KeyPrefix + s.WorkerID
			pipe.HSet(ctx, key, s.Fields())
			pipe.Expire(ctx, key, 90*time.Second)
			pipe.ZAdd(ctx, heartbeat.IndexKey, redis.Z{Score: float64(at.UnixMilli()) / 1e3, Member: s.WorkerID})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatalf("write heartbeats: %v", err)
		}
	}
}

// processCPU returns the CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU returns the CPU time the Redis server has used (INFO cpu).
func redisCPU(tb testing.TB, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, key := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					tb.Fatalf("INFO cpu: %q: %v", line, err)
				}
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// BenchmarkList10k lists 10,000 registered workers with the same Reader,
// as the bot does (dashboard events, scrapes, discovery): the hashes are
// read each time and decoded only when they changed, which here they do
// not. Targets (issue 5): under 100 ms per List, under 5 round trips per
// 1,000 workers.
func BenchmarkList10k(b *testing.B) { benchmarkList(b, false) }

// BenchmarkList10kCold lists them with a new Reader each time, as
// `botfleet status` does: every hash is decoded.
func BenchmarkList10kCold(b *testing.B) { benchmarkList(b, true) }

func benchmarkList(b *testing.B, cold bool) {
	const workers = 10000
	srv := redistest.Start(b)
	rdb := srv.Client(b)
	writeBeats(b, rdb, workers, time.Now())
	counter := &roundTrips{}
	rdb.AddHook(counter)
	r := fleet.NewReader(rdb, fleet.Options{})
	ctx := context.Background()
	if _, err := r.List(ctx); err != nil { // warm the connections
		b.Fatal(err)
	}
	startRedisCPU := redisCPU(b, rdb)
	counter.n.Store(0)
	b.ResetTimer()
	start, startCPU, lists := time.Now(), processCPU(b), 0
	for b.Loop() {
		lists++
		if cold {
			r = fleet.NewReader(rdb, fleet.Options{})
		}
		f, err := r.List(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Workers) != workers {
			b.Fatalf("listed %d workers, want %d", len(f.Workers), workers)
		}
	}
	elapsed, trips := time.Since(start), counter.n.Load()
	b.ReportMetric(float64(elapsed.Microseconds())/1e3/float64(lists), "ms/list")
	b.ReportMetric(float64((redisCPU(b, rdb)-startRedisCPU).Microseconds())/1e3/float64(lists), "redis-cpu-ms/list")
	// The reader's CPU time, which a busy machine does not inflate as it
	// does the wall time.
	b.ReportMetric(float64((processCPU(b)-startCPU).Microseconds())/1e3/float64(lists), "cpu-ms/list")
	b.ReportMetric(float64(trips)/float64(lists)/(workers/1000), "roundtrips/1000workers")
}
