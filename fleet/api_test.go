package fleet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// fetch GETs url and returns the status, the Content-Type and the body.
func fetch(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// workerKeys are the keys of every worker object of the API.
var workerKeys = []string{
	"worker_id", "state", "service", "hostname", "container_id", "deployment_env", "region", "version",
	"started_at", "interval", "jobs_processed", "jobs_failed", "current_job", "quiet", "metrics_url", "resources",
	"system", "timestamp", "health", "error", "last_beat_age_seconds", "clock_skew_seconds", "uptime_seconds",
}

func TestAPIRoutes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	now := redisNow(t, rdb)
	for i := 3; i >= 1; i-- {
		writeBeat(t, srv, beat{id: "py-1", at: now.Add(-time.Duration(i) * time.Second)})
	}
	writeBeat(t, srv, beat{id: "py-1", state: "BUSY", at: now})
	writeBeat(t, srv, beat{id: "old-1", at: now.Add(-time.Minute)})
	srv.CLI(t, "", "HSET", heartbeat.KeyPrefix+"bad", "worker_id", "bad", "state", "LOST")
	srv.CLI(t, "", "ZADD", heartbeat.IndexKey, "1", "bad")
	base := mountAPI(t, fleet.NewReader(rdb, fleet.Options{}))
	for path, want := range map[string]int{"/api/fleet/nothing": 404, "/api/fleet/workers": 404} {
		if resp, err := http.Get(base + path); err != nil || resp.StatusCode != want {
			t.Errorf("GET %s: %v %v, want %d", path, resp.Status, err, want)
		} else {
			resp.Body.Close()
		}
	}
	if resp, err := http.Post(base+"/api/fleet", "application/json", nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST /api/fleet: %v %v, want 405", resp.Status, err)
	} else {
		resp.Body.Close()
	}

	tests := []struct {
		name  string
		path  string
		code  int
		check func(t *testing.T, body []byte)
	}{
		{"the fleet", "/api/fleet", 200, checkFleetJSON},
		{"one worker with its history", "/api/fleet/workers/py-1", 200, func(t *testing.T, body []byte) {
			var w map[string]any
			mustUnmarshal(t, body, &w)
			checkKeys(t, w, append(workerKeys, "history"))
			if w["worker_id"] != "py-1" || w["state"] != "BUSY" || w["health"] != "alive" {
				t.Errorf("worker: got %s", body)
			}
			h, _ := w["history"].([]any)
			if len(h) != 4 || h[0].(map[string]any)["state"] != "IDLE" || h[3].(map[string]any)["state"] != "BUSY" {
				t.Errorf("history, oldest first: got %v", w["history"])
			}
		}},
		{"an invalid worker", "/api/fleet/workers/bad", 200, func(t *testing.T, body []byte) {
			var w map[string]any
			mustUnmarshal(t, body, &w)
			if w["health"] != "invalid" || !strings.Contains(w["error"].(string), "LOST") || w["timestamp"] != nil {
				t.Errorf("got %s", body)
			}
		}},
		{"an unknown worker", "/api/fleet/workers/nobody", 404, errorNaming("nobody")},
		{"history of one worker", "/api/fleet/history?worker=py-1&n=2", 200, func(t *testing.T, body []byte) {
			var ps []map[string]any
			mustUnmarshal(t, body, &ps)
			if len(ps) != 2 || ps[0]["state"] != "IDLE" || ps[1]["state"] != "BUSY" {
				t.Errorf("got %s", body)
			}
			for _, p := range ps {
				checkKeys(t, p, []string{"timestamp", "worker_id", "state", "memory_mb", "cpu_percent", "jobs_processed", "jobs_failed"})
				if p["worker_id"] != "py-1" || p["memory_mb"] != 245.7 {
					t.Errorf("point: got %v", p)
				}
			}
		}},
		{"history of all, default n", "/api/fleet/history", 200, func(t *testing.T, body []byte) {
			var ps []map[string]any
			mustUnmarshal(t, body, &ps)
			if len(ps) != 5 || ps[4]["worker_id"] != "old-1" {
				t.Errorf("got %s", body)
			}
		}},
		{"history of a worker never seen", "/api/fleet/history?worker=nobody", 200, func(t *testing.T, body []byte) {
			if strings.TrimSpace(string(body)) != "[]" {
				t.Errorf("got %s, want []", body)
			}
		}},
		{"history n=1000", "/api/fleet/history?n=1000", 200, nil},
		{"history n=0", "/api/fleet/history?n=0", 400, errorNaming(`n="0"`, "1 to 1000")},
		{"history n=1001", "/api/fleet/history?n=1001", 400, errorNaming(`n="1001"`, "1 to 1000")},
		{"history n=-5", "/api/fleet/history?n=-5", 400, errorNaming(`n="-5"`, "1 to 1000")},
		{"history n=ten", "/api/fleet/history?n=ten", 400, errorNaming(`n="ten"`, "1 to 1000")},
		{"targets", "/api/fleet/targets", 200, func(t *testing.T, body []byte) {
			want := `[{"targets":["10.0.3.17:9200"],"labels":{"__metrics_path__":"/metrics","__scheme__":"http","container_id":"a1b2c3d4e5f6","deployment_env":"production","hostname":"bot-server-01","region":"us-west-1","service":"worker","worker_id":"py-1"}}]`
			if got := strings.TrimSpace(string(body)); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		}},
		{"an unknown route", "/api/fleet/nothing", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, body := fetch(t, base+tt.path)
			if code != tt.code {
				t.Fatalf("status: got %d, want %d: %s", code, tt.code, body)
			}
			if tt.check == nil {
				return
			}
			if ctype != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ctype)
			}
			tt.check(t, body)
		})
	}
}

func checkFleetJSON(t *testing.T, body []byte) {
	t.Helper()
	var f struct {
		GeneratedAt float64          `json:"generated_at"`
		Summary     map[string]any   `json:"summary"`
		Workers     []map[string]any `json:"workers"`
	}
	mustUnmarshal(t, body, &f)
	if f.GeneratedAt < 1.6e9 {
		t.Errorf("generated_at: got %v, want Unix seconds", f.GeneratedAt)
	}
	want := map[string]any{"total": 3.0, "alive": 1.0, "stale": 1.0, "invalid": 1.0,
		"by_state": map[string]any{"STARTING": 0.0, "IDLE": 0.0, "BUSY": 1.0, "STOPPING": 0.0, "STOPPED": 0.0}}
	if fmt.Sprint(f.Summary) != fmt.Sprint(want) {
		t.Errorf("summary: got %v, want %v", f.Summary, want)
	}
	var got []string
	for _, w := range f.Workers {
		checkKeys(t, w, workerKeys)
		got = append(got, fmt.Sprintf("%s:%s", w["worker_id"], w["health"]))
	}
	if want := []string{"bad:invalid", "old-1:stale", "py-1:alive"}; !slices.Equal(got, want) {
		t.Errorf("workers: got %v, want %v", got, want)
	}
	py := f.Workers[2]
	if py["interval"] != 30.0 || py["started_at"].(float64) >= py["timestamp"].(float64) ||
		py["resources"].(map[string]any)["memory_mb"] != 245.7 || py["system"].(map[string]any)["pid"] != 4242.0 ||
		py["uptime_seconds"].(float64) < 3600 {
		t.Errorf("py-1: got %v", py)
	}
}

func checkKeys(t *testing.T, obj map[string]any, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("no %q in %v", k, obj)
		}
	}
	if len(obj) != len(keys) {
		t.Errorf("got keys %v, want exactly %v", slices.Sorted(maps.Keys(obj)), keys)
	}
}

func mustUnmarshal(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
}

// errorNaming checks a JSON error whose message contains every part.
func errorNaming(parts ...string) func(*testing.T, []byte) {
	return func(t *testing.T, body []byte) {
		t.Helper()
		var e map[string]string
		mustUnmarshal(t, body, &e)
		for _, p := range parts {
			if !strings.Contains(e["error"], p) {
				t.Errorf("error %q does not name %s", e["error"], p)
			}
		}
	}
}

// TestAPITargets builds discovery from workers' metrics_url of every form.
func TestAPITargets(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	r := fleet.NewReader(rdb, fleet.Options{})
	base := mountAPI(t, r)
	if _, ctype, body := fetch(t, base+"/api/fleet/targets"); ctype != "application/json" || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("no workers: got %q, %s; want application/json, []", ctype, body)
	}

	now := redisNow(t, rdb)
	tests := []struct {
		url    string
		target string // "" when skipped
		labels map[string]string
	}{
		{"http://10.0.3.17:9200/metrics", "10.0.3.17:9200", map[string]string{"__metrics_path__": "/metrics", "__scheme__": "http"}},
		{"https://w.example:8443/custom/metrics?format=text", "w.example:8443", map[string]string{"__metrics_path__": "/custom/metrics", "__scheme__": "https", "__param_format": "text"}},
		{"http://w.example/metrics", "w.example:80", nil},
		{"https://w.example", "w.example:443", map[string]string{"__metrics_path__": "/metrics"}},
		{"http://[::1]:9200/metrics", "[::1]:9200", nil},
		{"", "", nil},
		{"ftp://w.example/metrics", "", nil},
		{"10.0.3.17:9200", "", nil},
		{"http:///metrics", "", nil},
		{"http://user:secret@w.example:9200/metrics", "", nil},
		{"http://w.example:9200/metrics?bad-name=1", "", nil},
	}
	want := map[string]targetJSON{}
	skipped := 0
	for i, tt := range tests {
		id := fmt.Sprintf("t%02d", i)
		writeBeat(t, srv, beat{id: id, at: now})
		srv.CLI(t, "", "HSET", heartbeat.KeyPrefix+id, "metrics_url", tt.url)
		if tt.target == "" {
			skipped++
			continue
		}
		want[id] = targetJSON{Targets: []string{tt.target}, Labels: tt.labels}
	}
	writeBeat(t, srv, beat{id: "stale", at: now.Add(-time.Minute)})

	code, _, body := fetch(t, base+"/api/fleet/targets")
	var groups []targetJSON
	mustUnmarshal(t, body, &groups)
	if code != 200 || len(groups) != len(want) {
		t.Fatalf("got %d, %d groups, want %d (stale and bad URLs left out): %s", code, len(groups), len(want), body)
	}
	for _, g := range groups {
		id := g.Labels["worker_id"]
		w, ok := want[id]
		if !ok || !slices.Equal(g.Targets, w.Targets) {
			t.Errorf("%s: got targets %v, want %v", id, g.Targets, w.Targets)
		}
		for k, v := range w.Labels {
			if g.Labels[k] != v {
				t.Errorf("%s: label %s: got %q, want %q", id, k, g.Labels[k], v)
			}
		}
		for _, k := range []string{"hostname", "deployment_env", "region", "container_id", "service"} {
			if g.Labels[k] == "" {
				t.Errorf("%s: no label %s: %v", id, k, g.Labels)
			}
		}
	}
	expected := fmt.Sprintf("# HELP fleet_targets_skipped Alive workers left out of Prometheus discovery (/api/fleet/targets) for a missing or unusable metrics_url.\n# TYPE fleet_targets_skipped gauge\nfleet_targets_skipped %d\n", skipped)
	if err := testutil.CollectAndCompare(fleet.NewCollector(r), strings.NewReader(expected), "fleet_targets_skipped"); err != nil {
		t.Error(err)
	}
}

type targetJSON struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

func TestAPIRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	base := mountAPI(t, fleet.NewReader(noRetryClient(t, srv), fleet.Options{}))
	srv.Stop(t)
	for _, path := range []string{"/api/fleet", "/api/fleet/workers/w", "/api/fleet/history", "/api/fleet/targets", "/api/fleet/events"} {
		t.Run(path, func(t *testing.T) {
			code, ctype, body := fetch(t, base+path)
			if code != http.StatusServiceUnavailable || ctype != "application/json" {
				t.Errorf("got %d %q, want 503 application/json: %s", code, ctype, body)
			}
			errorNaming("Redis")(t, body)
		})
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

// readEvent reads the next event with a name, skipping retry: lines.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev.name != "":
			return ev, nil
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// TestAPIEvents follows the event stream as a worker joins and Redis goes
// down and comes back.
func TestAPIEvents(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := noRetryClient(t, srv)
	writeBeat(t, srv, beat{id: "first", at: redisNow(t, rdb)})
	base := mountAPI(t, fleet.NewReader(rdb, fleet.Options{}))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/fleet/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("got %d %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	events := bufio.NewReader(resp.Body)
	next := func(wantName string) sseEvent {
		t.Helper()
		ev, err := readEvent(events)
		if err != nil || ev.name != wantName {
			t.Fatalf("got event %q (%v), want %q: %s", ev.name, err, wantName, ev.data)
		}
		return ev
	}
	fleetIDs := func(ev sseEvent) []string {
		t.Helper()
		var f struct {
			Workers []struct {
				WorkerID string `json:"worker_id"`
			}
		}
		mustUnmarshal(t, []byte(ev.data), &f)
		var s []string
		for _, w := range f.Workers {
			s = append(s, w.WorkerID)
		}
		return s
	}

	if got := fleetIDs(next("fleet")); !slices.Equal(got, []string{"first"}) {
		t.Errorf("first event: got %v", got)
	}
	writeBeat(t, srv, beat{id: "second", at: redisNow(t, rdb)})
	if got := fleetIDs(next("fleet")); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("after a worker joined: got %v", got)
	}
	srv.Stop(t)
	if ev := next("error"); !strings.Contains(ev.data, "Redis") {
		t.Errorf("error event: %s", ev.data)
	}
	srv.Restart(t)
	ev, err := readEvent(events)
	for err == nil && ev.name == "error" { // the restart may take more than one period
		ev, err = readEvent(events)
	}
	if err != nil || ev.name != "fleet" {
		t.Fatalf("after the restart: got %q (%v), want a fleet event", ev.name, err)
	}
	if got := fleetIDs(ev); len(got) != 0 {
		t.Errorf("after the restart (Redis came back empty): got %v", got)
	}
}

// TestEventStreamsCapped: past Options.MaxStreams open event streams, the
// next client gets 503 (and polls); a closed stream frees its place.
func TestEventStreamsCapped(t *testing.T) {
	srv := redistest.Start(t)
	base := mountAPI(t, fleet.NewReader(srv.Client(t), fleet.Options{MaxStreams: 2}))
	open := func() (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/fleet/events", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return resp, cancel
	}
	var cancels []context.CancelFunc
	for i := range 2 {
		resp, cancel := open()
		cancels = append(cancels, cancel)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s, want 200", i+1, resp.Status)
		}
		defer resp.Body.Close()
	}
	resp, cancel := open()
	resp.Body.Close()
	cancel()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %s, want 503", resp.Status)
	}
	cancels[0]()
	testbin.WaitFor(t, 10*time.Second, "a place freed by the closed stream", func() bool {
		resp, cancel := open()
		defer cancel()
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cancels[1]()
}
