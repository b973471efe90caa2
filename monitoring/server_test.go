package monitoring

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging/logtest"
)

const testToken = "s3cret-token"

// startServer opens a server on a free loopback port and closes it when
// the test ends.
func startServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	if o.Logger == nil {
		o.Logger = logtest.NewRecorder().Logger()
	}
	s := NewServer(o)
	if err := s.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

type response struct {
	code   int
	header http.Header
	body   string
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// do sends one request; auth is the Authorization header, if any.
func do(t testing.TB, method, url, auth string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(body)}
}

// testMonitor returns a started Monitor over an IDLE worker.
func testMonitor(t *testing.T, w *Worker, checks ...Check) *Monitor {
	t.Helper()
	m := NewMonitor(MonitorOptions{
		Service: "worker", Worker: w, Sampler: fakeSampler(t), Checks: checks,
		CheckInterval: time.Hour, Logger: logtest.NewRecorder().Logger(),
	})
	m.Start(t.Context())
	t.Cleanup(m.Stop)
	return m
}

func TestServerRoutes(t *testing.T) {
	w := workerIn(t, StateIdle)
	reg := NewRegistry()
	if err := RegisterWorkerMetrics(reg, w, fakeSampler(t), Identity{WorkerID: "worker-1"}, nil); err != nil {
		t.Fatal(err)
	}
	rec := logtest.NewRecorder()
	s := NewServer(ServerOptions{
		Addr: "127.0.0.1:0", AuthToken: testToken, Gatherer: reg, Monitor: testMonitor(t, w), Logger: rec.Logger(),
	})
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	s.Handle("GET /api/workers", hello, true)
	s.Handle("GET /public", hello, false)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	bearer := "Bearer " + testToken
	tests := []struct {
		name        string
		method      string
		path        string
		auth        string
		wantCode    int
		wantBody    string // substring; "-" means empty
		wantType    string // Content-Type prefix
		wantHeaders map[string]string
	}{
		{name: "livez open", method: "GET", path: "/livez", wantCode: 200, wantBody: "ok", wantType: "text/plain"},
		{name: "livez ignores a bad token", method: "GET", path: "/livez", auth: "Bearer wrong", wantCode: 200, wantBody: "ok"},
		{name: "readyz open", method: "GET", path: "/readyz", wantCode: 200, wantBody: "ready"},
		{name: "health without token", method: "GET", path: "/health", wantCode: 401,
			wantHeaders: map[string]string{"WWW-Authenticate": "Bearer"}},
		{name: "health wrong token", method: "GET", path: "/health", auth: "Bearer wrong", wantCode: 401},
		{name: "health token prefix", method: "GET", path: "/health", auth: "Bearer s3cret", wantCode: 401},
		{name: "health basic auth", method: "GET", path: "/health", auth: "Basic " + testToken, wantCode: 401},
		{name: "health bare token", method: "GET", path: "/health", auth: testToken, wantCode: 401},
		{name: "health with token", method: "GET", path: "/health", auth: bearer, wantCode: 200,
			wantBody: `"status":"healthy"`, wantType: "application/json"},
		{name: "health scheme any case", method: "GET", path: "/health", auth: "bearer " + testToken, wantCode: 200},
		{name: "health HEAD", method: "HEAD", path: "/health", auth: bearer, wantCode: 200, wantBody: "-", wantType: "application/json"},
		{name: "livez HEAD", method: "HEAD", path: "/livez", wantCode: 200, wantBody: "-"},
		{name: "metrics without token", method: "GET", path: "/metrics", wantCode: 401},
		{name: "metrics with token", method: "GET", path: "/metrics", auth: bearer, wantCode: 200,
			wantBody: "worker_state{", wantType: "text/plain; version=0.0.4"},
		{name: "metrics HEAD", method: "HEAD", path: "/metrics", auth: bearer, wantCode: 200, wantBody: "-"},
		{name: "health POST", method: "POST", path: "/health", wantCode: 405,
			wantHeaders: map[string]string{"Allow": "GET, HEAD"}},
		{name: "livez DELETE", method: "DELETE", path: "/livez", wantCode: 405,
			wantHeaders: map[string]string{"Allow": "GET, HEAD"}},
		{name: "unknown path", method: "GET", path: "/nope", wantCode: 404},
		{name: "unknown path with token", method: "GET", path: "/health/x", auth: bearer, wantCode: 404},
		{name: "protected route without token", method: "GET", path: "/api/workers", wantCode: 401},
		{name: "protected route with token", method: "GET", path: "/api/workers", auth: bearer, wantCode: 200, wantBody: "hello"},
		{name: "open route", method: "GET", path: "/public", wantCode: 200, wantBody: "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, tt.method, s.URL()+tt.path, tt.auth)
			if got.code != tt.wantCode {
				t.Fatalf("%s %s: code %d, want %d (body %q)", tt.method, tt.path, got.code, tt.wantCode, got.body)
			}
			switch {
			case tt.wantBody == "-" && got.body != "":
				t.Errorf("body = %q, want none", got.body)
			case tt.wantBody != "-" && !strings.Contains(got.body, tt.wantBody):
				t.Errorf("body = %.200q, want it to contain %q", got.body, tt.wantBody)
			}
			if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			for k, want := range tt.wantHeaders {
				if v := got.header.Get(k); !strings.HasPrefix(v, want) {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
		})
	}
	for _, r := range rec.Records() {
		for _, v := range r.Attrs {
			if s, ok := v.(string); ok && strings.Contains(s, testToken) {
				t.Errorf("log %q carries the token", r.Message)
			}
		}
	}
}

func TestServerWithoutToken(t *testing.T) {
	w := workerIn(t, StateIdle)
	reg := NewRegistry()
	if err := RegisterWorkerMetrics(reg, w, nil, Identity{}, nil); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{Gatherer: reg, Monitor: testMonitor(t, w)})
	for _, path := range []string{"/health", "/metrics", "/livez", "/readyz"} {
		if got := do(t, "GET", s.URL()+path, ""); got.code != 200 {
			t.Errorf("GET %s without a token configured: %d, want 200", path, got.code)
		}
	}
}

func TestServerOptionalRoutes(t *testing.T) {
	s := startServer(t, ServerOptions{}) // no Monitor, no Gatherer
	for path, want := range map[string]int{"/livez": 200, "/health": 404, "/readyz": 404, "/metrics": 404} {
		if got := do(t, "GET", s.URL()+path, ""); got.code != want {
			t.Errorf("GET %s: %d, want %d", path, got.code, want)
		}
	}
}

func TestHealthStatusCodes(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name       string
		state      State
		critical   bool
		checkErr   error
		wantStatus Status
		wantCode   int
		wantReady  int
	}{
		{"healthy", StateIdle, true, nil, StatusHealthy, 200, 200},
		{"busy", StateBusy, true, nil, StatusHealthy, 200, 200},
		{"degraded", StateIdle, false, down, StatusDegraded, 200, 503},
		{"unhealthy: critical check", StateBusy, true, down, StatusUnhealthy, 503, 503},
		{"unhealthy: stopping", StateStopping, true, nil, StatusUnhealthy, 503, 503},
		{"starting", StateStarting, true, nil, StatusHealthy, 200, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dep := &switchable{}
			dep.set(tt.checkErr)
			w := workerIn(t, tt.state)
			m := testMonitor(t, w, Check{Name: "redis", Critical: tt.critical, Run: dep.run})
			s := startServer(t, ServerOptions{Monitor: m})
			got := do(t, "GET", s.URL()+"/health", "")
			if got.code != tt.wantCode || !strings.Contains(got.body, `"status":"`+string(tt.wantStatus)+`"`) {
				t.Errorf("/health: %d %s, want %d with status %s", got.code, got.body, tt.wantCode, tt.wantStatus)
			}
			ready := do(t, "GET", s.URL()+"/readyz", "")
			if ready.code != tt.wantReady {
				t.Errorf("/readyz: %d %q, want %d", ready.code, ready.body, tt.wantReady)
			}
			if ready.code != 200 && !strings.HasPrefix(ready.body, "not ready: ") {
				t.Errorf("/readyz body %q, want the reason", ready.body)
			}
		})
	}
}

func TestServerOpen(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	err = NewServer(ServerOptions{Addr: addr, Logger: logtest.NewRecorder().Logger()}).Open()
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Open on a taken port: %v, want an error naming %s", err, addr)
	}

	s := NewServer(ServerOptions{Addr: ":0", Logger: logtest.NewRecorder().Logger()})
	if s.URL() != "" {
		t.Errorf("URL() before Open = %q, want empty", s.URL())
	}
	if err := s.Open(); err != nil {
		t.Fatalf("Open(:0): %v", err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || strings.HasSuffix(s.URL(), ":0") {
		t.Errorf("URL() = %q, want http://127.0.0.1:<port>", s.URL())
	}
	if err := s.Open(); err == nil {
		t.Error("second Open succeeded, want an error")
	}
	if err := Probe(t.Context(), s.URL()+"/livez"); err != nil {
		t.Errorf("Probe /livez: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := Probe(t.Context(), s.URL()+"/livez"); err == nil {
		t.Error("Probe after Close succeeded, want an error")
	}
}

// TestServerCloseBounded: Close waits for requests in flight, but no
// longer than its context allows.
func TestServerCloseBounded(t *testing.T) {
	s := NewServer(ServerOptions{Addr: "127.0.0.1:0", Logger: logtest.NewRecorder().Logger()})
	entered, release := make(chan struct{}), make(chan struct{})
	s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}), false)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	go http.Get(s.URL() + "/slow") //nolint:errcheck // the server is closed under it
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a request in flight and an ended context: %v, want context.Canceled", err)
	}
}

func TestProbe(t *testing.T) {
	w := workerIn(t, StateStarting)
	s := startServer(t, ServerOptions{Monitor: testMonitor(t, w)})
	tests := []struct {
		name    string
		url     string
		wantErr string // "" means success
	}{
		{"live", s.URL() + "/livez", ""},
		{"not ready", s.URL() + "/readyz", "503 Service Unavailable: not ready: state is STARTING"},
		{"not found", s.URL() + "/nope", "404"},
		{"bad url", "http://[::1", "probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Probe(t.Context(), tt.url)
			if tt.wantErr == "" && err != nil {
				t.Errorf("Probe(%s) = %v, want nil", tt.url, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Probe(%s) = %v, want an error containing %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestMetricsCompressed(t *testing.T) {
	reg := NewRegistry()
	if err := RegisterWorkerMetrics(reg, workerIn(t, StateIdle), nil, Identity{}, nil); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{Gatherer: reg})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand, so the transport leaves the body compressed
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", got)
	}
}
