package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// runBuiltin runs a built-in handler on payload, as a consumer would.
func runBuiltin(ctx context.Context, t *testing.T, typ, payload string) (any, error) {
	t.Helper()
	mux := NewMux()
	Builtins(mux, nil)
	h, ok := mux.handler(typ)
	if !ok {
		t.Fatalf("no handler for %s", typ)
	}
	return h.Handle(ctx, &Job{ID: typ + ".test", Type: typ, Payload: json.RawMessage(payload), Attempt: 1, MaxAttempts: 3})
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
			got, err := runBuiltin(ctx, t, TypeSleep, tt.payload)
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
			got, err := runBuiltin(context.Background(), t, tt.typ, tt.payload)
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
