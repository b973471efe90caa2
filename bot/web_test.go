package bot_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/jobs"
)

// newAPI serves the web frontend over a real listener, backed by a real
// redis-server.
func newAPI(t *testing.T) (*httptest.Server, *bot.Metrics, *redistest.Server) {
	t.Helper()
	return newAPIWith(t, jobs.QueueOptions{}, 0)
}

// newAPIWith is newAPI with queue options and a request timeout.
func newAPIWith(t *testing.T, qo jobs.QueueOptions, timeout time.Duration) (*httptest.Server, *bot.Metrics, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	reg := prometheus.NewRegistry()
	m, err := bot.NewMetrics(reg, prometheus.Labels{"service": "bot"})
	if err != nil {
		t.Fatal(err)
	}
	mux := jobs.NewMux()
	jobs.Builtins(mux, nil)
	web := bot.NewWeb(bot.Deps{Queue: jobs.NewQueue(rdb, "default", qo), Types: mux, Metrics: m,
		Logger: slog.New(slog.DiscardHandler), Timeout: timeout})
	hm := http.NewServeMux()
	web.Mount(func(p string, h http.Handler, _ bool) { hm.Handle(p, h) })
	ts := httptest.NewServer(hm)
	t.Cleanup(ts.Close)
	return ts, m, srv
}

func do(t *testing.T, method, url, ctype, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return send(t, req)
}

// send sends req and decodes the JSON answer.
func send(t *testing.T, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

func TestSubmitAndGet(t *testing.T) {
	ts, _, srv := newAPI(t)
	code, body, hdr := do(t, "POST", ts.URL+"/api/jobs", "application/json", `{"type":"echo","payload":{"message":"hi"}}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, body)
	}
	id, _ := body["id"].(string)
	if !strings.HasPrefix(id, "echo.") || body["status"] != "queued" || hdr.Get("Location") != "/api/jobs/"+id {
		t.Fatalf("POST answered %v (Location %q)", body, hdr.Get("Location"))
	}
	code, body, _ = do(t, "GET", ts.URL+"/api/jobs/"+id, "", "")
	if code != http.StatusOK || body["id"] != id || body["status"] != "queued" {
		t.Fatalf("GET: %d %v", code, body)
	}
	if n := srv.Client(t).XLen(context.Background(), "jobs:default").Val(); n != 1 {
		t.Errorf("jobs:default holds %d entries, want 1", n)
	}
}

func TestBadRequests(t *testing.T) {
	ts, m, _ := newAPI(t)
	tests := []struct {
		name, ctype, body string
		want              int
		says              string
	}{
		{"not JSON", "application/json", `{"type":`, 400, "not valid JSON"},
		{"empty", "application/json", ``, 400, "empty"},
		{"unknown field", "application/json", `{"type":"echo","priority":1}`, 400, "priority"},
		{"missing type", "application/json", `{"payload":{}}`, 400, `"type" is missing`},
		{"unknown type", "application/json", `{"type":"rm.rf"}`, 400, `unknown job type "rm.rf"; want one of echo, fail, http.fetch, sleep`},
		{"type not a string", "application/json", `{"type":5}`, 400, `"type"`},
		{"two objects", "application/json", `{"type":"echo"}{"type":"echo"}`, 400, "more"},
		{"trailing garbage", "application/json", `{"type":"echo"}]`, 400, "more"},
		{"invalid UTF-8", "application/json", "{\"type\":\"echo\",\"payload\":{\"message\":\"\xff\"}}", 400, "not valid UTF-8 at byte 37"},
		{"negative sleep", "application/json", `{"type":"sleep","payload":{"duration":"-1s"}}`, 400, `"duration"`},
		{"huge sleep", "application/json", `{"type":"sleep","payload":{"duration":1e300}}`, 400, `"duration"`},
		{"misspelt payload field", "application/json", `{"type":"sleep","payload":{"duraton":"1s"}}`, 400, `duraton`},
		{"file URL", "application/json", `{"type":"http.fetch","payload":{"url":"file:///etc/passwd"}}`, 400, `"url"`},
		{"wrong content type", "text/plain", `{"type":"echo"}`, 415, "application/json"},
		{"too large", "application/json", `{"type":"echo","payload":"` + strings.Repeat("x", bot.MaxRequestBody) + `"}`, 413, "over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := do(t, "POST", ts.URL+"/api/jobs", tt.ctype, tt.body)
			msg, _ := body["error"].(string)
			if code != tt.want || !strings.Contains(msg, tt.says) {
				t.Errorf("got %d %q, want %d saying %q", code, msg, tt.want, tt.says)
			}
		})
	}
	if code, body, _ := do(t, "GET", ts.URL+"/api/jobs/echo.nosuch", "", ""); code != 404 || !strings.Contains(body["error"].(string), "echo.nosuch") {
		t.Errorf("unknown id: %d %v", code, body)
	}
	if code, _, _ := do(t, "DELETE", ts.URL+"/api/jobs", "", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /api/jobs: %d, want 405", code)
	}
	if got := testutil.ToFloat64(m.RequestsCounter("web_frontend", 400)); got < 7 {
		t.Errorf("bot_frontend_requests_total{code=400} = %v, want the bad requests counted", got)
	}
}
