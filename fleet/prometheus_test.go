package fleet_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/internal/promtest"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// prometheusServer is a real Prometheus process, with the queries these
// tests make of it.
type prometheusServer struct{ base string }

// startPrometheus writes config to a temporary prometheus.yml and runs the
// real prometheus on it.
func startPrometheus(t *testing.T, config string) *prometheusServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return &prometheusServer{base: promtest.Start(t, path).URL}
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
	base := mountAPI(t, fleet.NewReader(srv.Client(t), fleet.Options{}))
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
