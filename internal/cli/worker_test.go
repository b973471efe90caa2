package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// get fetches url, with a bearer token when token is set.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type workerEnv struct {
	redis *redistest.Server
	port  int
	base  string
	proc  *testbin.Proc
}

// startWorker runs `botfleet worker` against a real redis-server and waits
// until its endpoints answer.
func startWorker(t *testing.T, srv *redistest.Server, id string, extra ...string) *workerEnv {
	t.Helper()
	port := testbin.FreePort(t)
	env := append([]string{
		"REDIS_URL=" + srv.URL(), "WORKER_ID=" + id, "HEARTBEAT_INTERVAL=0.5", "HEARTBEAT_TTL=2",
		"METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(port), "LOG_DIR=" + t.TempDir(),
	}, extra...)
	w := &workerEnv{redis: srv, port: port, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	w.proc = testbin.Start(t, env, "worker")
	testbin.WaitFor(t, 15*time.Second, "the worker's /livez", func() bool {
		code, _ := get(t, w.base+"/livez", "")
		return code == http.StatusOK
	})
	return w
}

func TestWorkerEndpointsAndHeartbeat(t *testing.T) {
	srv := redistest.Start(t)
	w := startWorker(t, srv, "worker-1")
	rdb := srv.Client(t)
	ctx := context.Background()

	testbin.WaitFor(t, 10*time.Second, "state IDLE in the heartbeat hash", func() bool {
		return rdb.HGet(ctx, "worker:heartbeat:worker-1", "state").Val() == "IDLE"
	})

	code, body := get(t, w.base+"/health", "")
	var health map[string]any
	if err := json.Unmarshal(body, &health); err != nil || code != http.StatusOK {
		t.Fatalf("/health: %d %s (%v)", code, body, err)
	}
	for _, k := range []string{"status", "state", "worker_id", "uptime_seconds", "system", "resources", "timestamp", "checks"} {
		if _, ok := health[k]; !ok {
			t.Errorf("/health lacks %q: %s", k, body)
		}
	}
	if health["status"] != "healthy" || health["worker_id"] != "worker-1" || health["state"] != "IDLE" {
		t.Errorf("/health = %s", body)
	}
	for _, k := range []string{"memory_mb", "memory_percent", "cpu_percent", "num_threads", "open_files"} {
		if _, ok := health["resources"].(map[string]any)[k]; !ok {
			t.Errorf("resources lacks %q", k)
		}
	}

	code, metrics := get(t, w.base+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{"worker_state{", "worker_memory_bytes{", "worker_jobs_processed_total{", "worker_info{", "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(string(metrics), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	promtool := exec.Command("promtool", "check", "metrics")
	promtool.Stdin = strings.NewReader(string(metrics))
	if out, err := promtool.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// The design's debug commands, as written.
	if out := srv.CLI(t, "", "HGETALL", "worker:heartbeat:worker-1"); !strings.Contains(out, "worker-1") || !strings.Contains(out, "metrics_url") {
		t.Errorf("HGETALL printed %q", out)
	}
	if out := srv.CLI(t, "", "XREAD", "COUNT", "10", "STREAMS", "worker:status", "0"); !strings.Contains(out, "worker-1") {
		t.Errorf("XREAD printed %q", out)
	}
	if url := rdb.HGet(ctx, "worker:heartbeat:worker-1", "metrics_url").Val(); url != w.base+"/metrics" {
		t.Errorf("metrics_url = %q, want %s/metrics", url, w.base)
	}

	// SIGTERM: STOPPED in the stream, the hash gone, out of the index, exit 0.
	w.proc.Signal(t, syscall.SIGTERM)
	if code := w.proc.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	last := rdb.XRevRangeN(ctx, "worker:status", "+", "-", 1).Val()
	if len(last) != 1 || last[0].Values["state"] != "STOPPED" || last[0].Values["worker_id"] != "worker-1" {
		t.Errorf("last stream entry = %v, want worker-1 STOPPED", last)
	}
	if n := rdb.Exists(ctx, "worker:heartbeat:worker-1").Val(); n != 0 {
		t.Error("the heartbeat hash survived a clean stop")
	}
	if _, err := rdb.ZScore(ctx, "worker:index", "worker-1").Result(); err == nil {
		t.Error("the worker is still in worker:index after a clean stop")
	}
}

func TestWorkerKilledHashExpires(t *testing.T) {
	srv := redistest.Start(t)
	w := startWorker(t, srv, "worker-k")
	rdb := srv.Client(t)
	ctx := context.Background()
	testbin.WaitFor(t, 10*time.Second, "the heartbeat hash", func() bool {
		return rdb.Exists(ctx, "worker:heartbeat:worker-k").Val() == 1
	})
	if ttl := rdb.TTL(ctx, "worker:heartbeat:worker-k").Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Errorf("hash TTL = %v, want (0, 2s]", ttl)
	}
	w.proc.Signal(t, syscall.SIGKILL)
	w.proc.Wait(t, 5*time.Second)
	// Nothing deletes the hash of a killed worker: it goes because its TTL
	// (at most 2 s, checked above) runs out and nothing renews it.
	testbin.WaitFor(t, 10*time.Second, "the hash to expire", func() bool {
		return rdb.Exists(ctx, "worker:heartbeat:worker-k").Val() == 0
	})
}

func TestWorkerSurvivesRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	w := startWorker(t, srv, "worker-o")
	rdb := srv.Client(t)
	ctx := context.Background()
	testbin.WaitFor(t, 10*time.Second, "the heartbeat hash", func() bool {
		return rdb.Exists(ctx, "worker:heartbeat:worker-o").Val() == 1
	})
	srv.Stop(t)
	testbin.WaitFor(t, 15*time.Second, "/health to turn degraded", func() bool {
		_, body := get(t, w.base+"/health", "")
		return strings.Contains(string(body), `"status":"degraded"`)
	})
	select {
	case <-w.proc.Done():
		t.Fatalf("the worker exited during the outage:\n%s", w.proc.Output())
	default:
	}
	srv.Restart(t)
	testbin.WaitFor(t, 15*time.Second, "the hash to come back after the outage", func() bool {
		return rdb.Exists(ctx, "worker:heartbeat:worker-o").Val() == 1
	})
	testbin.WaitFor(t, 15*time.Second, "/health healthy again", func() bool {
		_, body := get(t, w.base+"/health", "")
		return strings.Contains(string(body), `"status":"healthy"`)
	})
	if out := w.proc.Output(); strings.Count(out, "heartbeat") == 0 {
		t.Errorf("no heartbeat warning or recovery line was logged:\n%s", out)
	}
}

func TestWorkerBearerToken(t *testing.T) {
	srv := redistest.Start(t)
	w := startWorker(t, srv, "worker-a", "METRICS_AUTH_TOKEN=t0ps3cret")
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "wrong", http.StatusUnauthorized},
		{"/metrics", "t0ps3cret", http.StatusOK},
		{"/health", "", http.StatusUnauthorized},
		{"/health", "t0ps3cret", http.StatusOK},
		{"/livez", "", http.StatusOK},
	} {
		if code, _ := get(t, w.base+tt.path, tt.token); code != tt.want {
			t.Errorf("GET %s with token %q: %d, want %d", tt.path, tt.token, code, tt.want)
		}
	}
	if strings.Contains(w.proc.Output(), "t0ps3cret") {
		t.Error("the token reached the logs")
	}
}

func TestWorkerBadEnvironment(t *testing.T) {
	p := testbin.Start(t, []string{"LOG_LEVEL=LOUD", "METRICS_PORT=abc", "REDIS_URL=redis://:hunter2@x:1/0"}, "worker")
	if code := p.Wait(t, 10*time.Second); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	out := p.Output()
	for _, want := range []string{`LOG_LEVEL="LOUD"`, `METRICS_PORT="abc"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}

func TestWorkerPortTaken(t *testing.T) {
	srv := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p := testbin.Start(t, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(port), "LOG_DIR=" + t.TempDir()}, "worker")
	if code := p.Wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(p.Output(), strconv.Itoa(port)) {
		t.Errorf("the error does not name the port:\n%s", p.Output())
	}
}
