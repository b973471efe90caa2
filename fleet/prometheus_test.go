package fleet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// prometheusServer is a real Prometheus process.
type prometheusServer struct {
	base string
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPrometheus runs the real prometheus (Debian package prometheus) with
// config on a free loopback port, waits until it is ready and stops it when
// the test ends.
func startPrometheus(t *testing.T, config string) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found: install the Debian package prometheus (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testbin.FreePort(t))
	p := &prometheusServer{base: "http://" + addr, out: &lockedBuffer{}}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test binary
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Registered after TempDir, so it runs first: Prometheus is gone before
	// its data directory is removed.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	testbin.WaitFor(t, 20*time.Second, "prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", p.out.String())
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// activeTarget is one entry of Prometheus's /api/v1/targets.
type activeTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

// targets returns Prometheus's active targets by worker_id.
func (p *prometheusServer) targets(t *testing.T) map[string]activeTarget {
	t.Helper()
	var body struct {
		Data struct {
			ActiveTargets []activeTarget `json:"activeTargets"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/targets?state=active", &body)
	m := map[string]activeTarget{}
	for _, at := range body.Data.ActiveTargets {
		m[at.Labels["worker_id"]] = at
	}
	return m
}

// query returns the number of series of an instant query.
func (p *prometheusServer) query(t *testing.T, q string) int {
	t.Helper()
	var body struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/query?query="+url.QueryEscape(q), &body)
	return len(body.Data.Result)
}

func (p *prometheusServer) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
}

// upWithin waits until every id is a target Prometheus scraped successfully.
func (p *prometheusServer) upWithin(t *testing.T, d time.Duration, ids ...string) {
	t.Helper()
	var last map[string]activeTarget
	deadline := time.Now().Add(d)
	for {
		last = p.targets(t)
		up := 0
		for _, id := range ids {
			if last[id].Health == "up" {
				up++
			}
		}
		if up == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %v are not all up in Prometheus; its targets: %+v", d, ids, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPrometheusDiscovery: a real Prometheus discovers the workers through
// /api/fleet/targets and scrapes them, follows a worker that joins and
// drops one that stops.
func TestPrometheusDiscovery(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	base, _ := mountAPI(t, fleet.NewReader(srv.Client(t), fleet.Options{}))
	prom := startPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bot-workers
    honor_labels: true
    http_sd_configs:
      - url: %s/api/fleet/targets
        refresh_interval: 1s
`, base))

	spawnWorker(t, srv, "worker-a")
	b := spawnWorker(t, srv, "worker-b")
	prom.upWithin(t, 15*time.Second, "worker-a", "worker-b")
	for id, at := range prom.targets(t) {
		if at.Labels["job"] != "bot-workers" || at.Labels["service"] != "worker" || at.LastError != "" {
			t.Errorf("target %s: %+v", id, at)
		}
	}
	testbin.WaitFor(t, 10*time.Second, "worker-a's own metrics in Prometheus", func() bool {
		return prom.query(t, `worker_state{job="bot-workers", worker_id="worker-a"}`) == 1
	})

	// A worker joins: discovered at the next refresh (1 s) and scraped,
	// though Prometheus passes discovered targets on to its scrapers at
	// most every 5 s (its discovery manager's fixed update throttle), so
	// 5 to 7 s in all.
	spawnWorker(t, srv, "worker-c")
	joined := time.Now()
	prom.upWithin(t, 10*time.Second, "worker-c")
	t.Logf("worker-c scraped %v after its first beat", time.Since(joined).Round(time.Millisecond))

	// A worker stops: it leaves the list at once (the hash goes with a
	// clean stop), and Prometheus's targets within the same throttle.
	b.proc.Signal(t, syscall.SIGTERM)
	if code := b.proc.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("worker-b exited with %d after SIGTERM", code)
	}
	left := time.Now()
	testbin.WaitFor(t, 10*time.Second, "worker-b to leave Prometheus's targets", func() bool {
		_, ok := prom.targets(t)["worker-b"]
		return !ok
	})
	t.Logf("worker-b left the targets %v after it exited", time.Since(left).Round(time.Millisecond))
	if got := prom.targets(t); len(got) != 2 || got["worker-a"].Health != "up" || got["worker-c"].Health != "up" {
		t.Errorf("targets at the end: %+v, want worker-a and worker-c up", got)
	}
}
