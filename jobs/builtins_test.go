package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// runBuiltin runs a built-in handler on payload, as a consumer would.
func runBuiltin(ctx context.Context, t *testing.T, client *http.Client, typ, payload string) (any, error) {
	t.Helper()
	mux := NewMux()
	Builtins(mux, client)
	h, ok := mux.handler(typ)
	if !ok {
		t.Fatalf("no handler for %s", typ)
	}
	return h.Handle(ctx, &Job{ID: typ + ".test", Type: typ, Payload: json.RawMessage(payload), Attempt: 1, MaxAttempts: 3})
}

func TestHTTPFetch(t *testing.T) {
	big := strings.Repeat("x", MaxFetchBody+10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("hello"))
		case "/missing":
			http.NotFound(w, r)
		case "/big":
			w.Write([]byte(big))
		case "/slow":
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}
	tests := []struct {
		name     string
		payload  string
		want     FetchResult
		wantErr  string
		skipRetr bool
	}{
		{name: "ok", payload: `{"url":"` + srv.URL + `/ok"}`, want: FetchResult{Status: 200, Bytes: 5}},
		{name: "404 is a result", payload: `{"url":"` + srv.URL + `/missing"}`, want: FetchResult{Status: 404, Bytes: 19}},
		{name: "body capped", payload: `{"url":"` + srv.URL + `/big"}`, want: FetchResult{Status: 200, Bytes: MaxFetchBody, Truncated: true}},
		{name: "timeout", payload: `{"url":"` + srv.URL + `/slow","timeout":"50ms"}`, wantErr: "context deadline exceeded"},
		{name: "timeout in seconds", payload: `{"url":"` + srv.URL + `/slow","timeout":0.05}`, wantErr: "context deadline exceeded"},
		{name: "no url", payload: `{}`, wantErr: `"url" is missing`, skipRetr: true},
		{name: "not http", payload: `{"url":"file:///etc/passwd"}`, wantErr: "want an http or https URL", skipRetr: true},
		{name: "no host", payload: `{"url":"http:///x"}`, wantErr: "no host", skipRetr: true},
		{name: "unknown field", payload: `{"url":"` + srv.URL + `","method":"POST"}`, wantErr: `unknown field "method"`, skipRetr: true},
		{name: "timeout too long", payload: `{"url":"` + srv.URL + `","timeout":"1h"}`, wantErr: "at most 2m0s", skipRetr: true},
		{name: "refused", payload: `{"url":"http://127.0.0.1:1/"}`, wantErr: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runBuiltin(context.Background(), t, srv.Client(), TypeHTTPFetch, tt.payload)
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

func TestSleep(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		cancel  bool
		want    any
		wantErr string
	}{
		{name: "duration text", payload: `{"duration":"10ms"}`, want: int64(10)},
		{name: "seconds", payload: `{"duration":0.01}`, want: int64(10)},
		{name: "cancelled", payload: `{"duration":"1h"}`, cancel: true, wantErr: "context canceled"},
		{name: "negative", payload: `{"duration":"-1s"}`, wantErr: "want 0 to 1h0m0s"},
		{name: "not a duration", payload: `{"duration":"soon"}`, wantErr: `duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			start := time.Now()
			got, err := runBuiltin(ctx, t, nil, TypeSleep, tt.payload)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if m, _ := got.(map[string]int64); err != nil || m["slept_ms"] != tt.want {
				t.Errorf("sleep = %v, %v; want slept_ms %v", got, err, tt.want)
			}
			if took := time.Since(start); took < 10*time.Millisecond {
				t.Errorf("returned after %v, want at least 10ms", took)
			}
		})
	}
}

func TestEchoAndFail(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		payload string
		want    string
		wantErr string
	}{
		{name: "echo", typ: TypeEcho, payload: `{"a":[1,2]}`, want: `{"a":[1,2]}`},
		{name: "fail with message", typ: TypeFail, payload: `{"message":"boom"}`, wantErr: "boom"},
		{name: "fail without payload", typ: TypeFail, payload: `null`, wantErr: "fail: this job type always fails"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runBuiltin(context.Background(), t, nil, tt.typ, tt.payload)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || errors.Is(err, ErrSkipRetry) {
					t.Errorf("err = %v, want %q, retried", err, tt.wantErr)
				}
				return
			}
			data, _ := json.Marshal(got)
			if err != nil || string(data) != tt.want {
				t.Errorf("= %s, %v; want %s", data, err, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	data, err := json.Marshal(SleepPayload{Duration: Duration(1500 * time.Millisecond)})
	if err != nil || string(data) != `{"duration":"1.5s"}` {
		t.Errorf("Marshal = %s, %v; want {\"duration\":\"1.5s\"}", data, err)
	}
}
