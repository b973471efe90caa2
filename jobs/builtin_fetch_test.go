package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/netguard/netguardtest"
	"github.com/botfleet/botfleet/logging/logtest"
)

// fetchServer is a loopback server with the paths the fetch tests use;
// /redirect?to=URL answers 302 to URL.
func fetchServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("hello"))
		case "/missing":
			http.NotFound(w, r)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 5000)))
		case "/slow":
			<-r.Context().Done()
		case "/redirect":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}
	return srv
}

// runFetch runs one http.fetch job with opts, dialling loopback only: a
// destination the guard wrongly lets through fails the test before any
// packet is sent to it. rec, if not nil, receives the fetcher's records.
func runFetch(t *testing.T, opts FetchOptions, rec *logtest.Recorder, payload string) (any, error) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if rec != nil {
		logger = rec.Logger()
	}
	f, err := newFetcher(opts, logger, netguardtest.LoopbackOnly(t))
	if err != nil {
		t.Fatal(err)
	}
	return f.fetch(context.Background(), &Job{ID: "http.fetch.test", Type: TypeHTTPFetch, Payload: json.RawMessage(payload), Attempt: 1, MaxAttempts: 3})
}

func TestHTTPFetch(t *testing.T) {
	srv := fetchServer(t)
	allowed := FetchOptions{Allow: []string{"127.0.0.1"}}
	tests := []struct {
		name     string
		opts     FetchOptions
		payload  string
		want     FetchResult
		wantErr  string
		skipRetr bool
	}{
		{name: "ok", payload: `{"url":"` + srv.URL + `/ok"}`, want: FetchResult{Status: 200, Bytes: 5}},
		{name: "404 is a result", payload: `{"url":"` + srv.URL + `/missing"}`, want: FetchResult{Status: 404, Bytes: 19}},
		{name: "body capped at the default", payload: `{"url":"` + srv.URL + `/big"}`, want: FetchResult{Status: 200, Bytes: 5000}},
		{name: "body capped", opts: FetchOptions{MaxBytes: 1000}, payload: `{"url":"` + srv.URL + `/big"}`, want: FetchResult{Status: 200, Bytes: 1000, Truncated: true}},
		{name: "redirect followed", payload: `{"url":"` + srv.URL + `/redirect?to=/ok"}`, want: FetchResult{Status: 200, Bytes: 5}},
		{name: "redirects not followed", opts: FetchOptions{MaxRedirects: -1}, payload: `{"url":"` + srv.URL + `/redirect?to=/ok"}`, want: FetchResult{Status: 302, Bytes: 26}},
		{name: "too many redirects", payload: `{"url":"` + srv.URL + `/loop"}`, wantErr: "stopped after 5 redirects"},
		{name: "fewer redirects allowed", opts: FetchOptions{MaxRedirects: 2}, payload: `{"url":"` + srv.URL + `/loop"}`, wantErr: "stopped after 2 redirects"},
		{name: "timeout", payload: `{"url":"` + srv.URL + `/slow","timeout":"50ms"}`, wantErr: "context deadline exceeded"},
		{name: "timeout in seconds", payload: `{"url":"` + srv.URL + `/slow","timeout":0.05}`, wantErr: "context deadline exceeded"},
		{name: "default timeout from the options", opts: FetchOptions{Timeout: 50 * time.Millisecond}, payload: `{"url":"` + srv.URL + `/slow"}`, wantErr: "context deadline exceeded"},
		{name: "no url", payload: `{}`, wantErr: `payload field "url": missing`, skipRetr: true},
		{name: "HEAD", payload: `{"url":"` + srv.URL + `/ok","method":"HEAD"}`, want: FetchResult{Status: 200}},
		{name: "file URL", payload: `{"url":"file:///etc/passwd"}`, wantErr: "want an http or https URL", skipRetr: true},
		{name: "gopher URL", payload: `{"url":"gopher://127.0.0.1:70/"}`, wantErr: "want an http or https URL", skipRetr: true},
		{name: "no host", payload: `{"url":"http:///x"}`, wantErr: "no host", skipRetr: true},
		{name: "timeout too long", payload: `{"url":"` + srv.URL + `","timeout":"1h"}`, wantErr: "at most 2m0s", skipRetr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Allow = allowed.Allow
			got, err := runFetch(t, tt.opts, nil, tt.payload)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, ErrSkipRetry) != tt.skipRetr {
					t.Errorf("err = %v, want one containing %q (skip retry: %v)", err, tt.wantErr, tt.skipRetr)
				}
				return
			}
			res, ok := got.(FetchResult)
			if err != nil || !ok {
				t.Fatalf("fetch = %v, %v; want a FetchResult", got, err)
			}
			if res.DurationMS <= 0 {
				t.Errorf("duration_ms = %v, want > 0", res.DurationMS)
			}
			res.DurationMS = 0
			if res != tt.want {
				t.Errorf("result = %+v, want %+v", res, tt.want)
			}
		})
	}
}

// TestFetchGuard checks which destinations http.fetch reaches, and that
// every one it does not gets the same error, whether the guard refused it
// (before connecting: runFetch's dialer would fail the test otherwise) or
// nothing listened there. Only the worker's DEBUG record tells them apart.
func TestFetchGuard(t *testing.T) {
	srv := fetchServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	closed := closedPort(t)
	redirect := func(to string) string { return srv.URL + "/redirect?to=" + to }
	tests := []struct {
		name    string
		allow   []string
		url     string
		wantLog string // in the DEBUG record of a refused or unreachable destination; "" means reached
	}{
		{name: "loopback refused by default", url: srv.URL + "/ok", wantLog: "destination refused: 127.0.0.1 is loopback"},
		{name: "loopback name refused after resolving", url: "http://localhost:" + port + "/ok", wantLog: "destination refused: 127.0.0.1 is loopback"},
		{name: "allowed by its address", allow: []string{"127.0.0.1"}, url: srv.URL + "/ok"},
		{name: "allowed by prefix", allow: []string{"127.0.0.0/8"}, url: srv.URL + "/ok"},
		{name: "allowed by name", allow: []string{"localhost"}, url: "http://localhost:" + port + "/ok"},
		{name: "closed port", allow: []string{"127.0.0.0/8"}, url: "http://" + closed + "/", wantLog: "connection refused"},
		{name: "private address", url: "http://10.0.0.1/", wantLog: "destination refused: 10.0.0.1 is private"},
		{name: "cloud metadata address", url: "http://169.254.169.254/latest/meta-data/", wantLog: "destination refused: 169.254.169.254 is link-local"},
		{name: "cloud metadata name", url: "http://metadata.google.internal/computeMetadata/v1/", wantLog: "is a cloud metadata service"},
		{name: "IPv4-mapped private address", url: "http://[::ffff:10.0.0.1]/", wantLog: "10.0.0.1 is private"},
		{name: "IPv6 unique local address", url: "http://[fd00::1]:8080/", wantLog: "fd00::1 is unique local"},
		{name: "CGNAT address", url: "http://100.64.0.1/", wantLog: "CGNAT"},
		{name: "redirect to metadata", allow: []string{"127.0.0.1"}, url: redirect("http://169.254.169.254/latest/meta-data/"), wantLog: "169.254.169.254 is link-local"},
		{name: "redirect to private", allow: []string{"127.0.0.1"}, url: redirect("http://10.0.0.1:" + port + "/"), wantLog: "10.0.0.1 is private"},
		{name: "redirect to other loopback", allow: []string{"127.0.0.1"}, url: redirect("http://127.0.0.2:" + port + "/"), wantLog: "127.0.0.2 is loopback"},
		{name: "redirect to IPv6 loopback", allow: []string{"127.0.0.1"}, url: redirect("http://[::1]:" + port + "/"), wantLog: "::1 is loopback"},
		{name: "redirect to file", allow: []string{"127.0.0.1"}, url: redirect("file:///etc/passwd"), wantLog: `redirect to a "file" URL`},
		{name: "redirect to allowed", allow: []string{"127.0.0.1"}, url: redirect("/ok")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := logtest.NewRecorder()
			got, err := runFetch(t, FetchOptions{Allow: tt.allow}, rec, fmt.Sprintf(`{"url":%q}`, tt.url))
			if tt.wantLog == "" {
				if res, ok := got.(FetchResult); err != nil || !ok || res.Status != 200 {
					t.Errorf("fetch = %+v, %v; want status 200", got, err)
				}
				return
			}
			if err == nil || err.Error() != ErrFetchUnreachable.Error() || errors.Is(err, ErrSkipRetry) {
				t.Errorf("err = %v, want exactly %q, retried", err, ErrFetchUnreachable)
			}
			if log := fmt.Sprint(rec.Records()); !strings.Contains(log, tt.wantLog) {
				t.Errorf("log = %s, want a record saying %q", log, tt.wantLog)
			}
		})
	}
}

// closedPort returns a loopback host:port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestParseFetchAllow(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    []string
		wantErr string
	}{
		{name: "unset", value: ""},
		{name: "blank", value: " , "},
		{name: "list", value: "127.0.0.0/8, files.internal ,*.svc.local,fd00::/8,", want: []string{"127.0.0.0/8", "files.internal", "*.svc.local", "fd00::/8"}},
		{name: "bad prefix", value: "127.0.0.0/8,10.0.0.0/40", wantErr: `HTTP_FETCH_ALLOW="127.0.0.0/8,10.0.0.0/40": entry "10.0.0.0/40": not a CIDR prefix; want a host name`},
		{name: "port", value: "example.com:80", wantErr: `entry "example.com:80": a port`},
		{name: "URL", value: "http://example.com/", wantErr: `entry "http://example.com/"`},
		{name: "space in a name", value: "my host", wantErr: `entry "my host": not a host name; want a host name (example.com, *.example.com), an IP address (10.1.2.3) or a CIDR prefix (10.0.0.0/8, fd00::/8), comma-separated`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFetchAllow(tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseFetchAllow(%q) = %v, want an error containing %q", tt.value, err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ParseFetchAllow(%q) = %q, %v; want %q", tt.value, got, err, tt.want)
			}
		})
	}
}

func TestBuiltinsBadAllow(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `entry "10.0.0.1/8"`) {
			t.Errorf("recovered %v, want a panic naming the entry", r)
		}
	}()
	Builtins(NewMux(), &BuiltinOptions{Fetch: FetchOptions{Allow: []string{"10.0.0.1/8"}}})
}
