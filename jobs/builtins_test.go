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

// TestBuiltinPayloads checks each built-in type's payload rules twice: at
// the door (Mux.Validate) and on the worker (the handler), which must
// refuse the same payloads with the same field, without retries.
func TestBuiltinPayloads(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		payload   string
		wantField string
		wantErr   string // substring of the error; "" means accepted
	}{
		{name: "fetch", typ: TypeHTTPFetch, payload: `{"url":"https://example.com/x"}`},
		{name: "fetch with every field", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","method":"HEAD","timeout":"5s"}`},
		{name: "fetch timeout 0 is the default", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","timeout":0}`},
		{name: "fetch without url", typ: TypeHTTPFetch, payload: `{}`, wantField: "url", wantErr: "missing; want an http or https URL"},
		{name: "fetch null", typ: TypeHTTPFetch, payload: `null`, wantField: "url", wantErr: "missing"},
		{name: "fetch empty url", typ: TypeHTTPFetch, payload: `{"url":""}`, wantField: "url", wantErr: "missing"},
		{name: "fetch file URL", typ: TypeHTTPFetch, payload: `{"url":"file:///etc/passwd"}`, wantField: "url", wantErr: `"file:///etc/passwd": want an http or https URL`},
		{name: "fetch gopher URL", typ: TypeHTTPFetch, payload: `{"url":"gopher://example.com:70/"}`, wantField: "url", wantErr: "want an http or https URL"},
		{name: "fetch without scheme", typ: TypeHTTPFetch, payload: `{"url":"example.com"}`, wantField: "url", wantErr: "want an http or https URL"},
		{name: "fetch without host", typ: TypeHTTPFetch, payload: `{"url":"http:///x"}`, wantField: "url", wantErr: "has no host"},
		{name: "fetch with a port only", typ: TypeHTTPFetch, payload: `{"url":"http://:80/"}`, wantField: "url", wantErr: "has no host"},
		{name: "fetch not a URL", typ: TypeHTTPFetch, payload: `{"url":"http://a b/"}`, wantField: "url", wantErr: "is not a URL"},
		{name: "fetch url not a string", typ: TypeHTTPFetch, payload: `{"url":5}`, wantField: "url", wantErr: "a JSON number; want a string"},
		{name: "fetch POST", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","method":"POST"}`, wantField: "method", wantErr: `"POST": want GET or HEAD`},
		{name: "fetch lower-case method", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","method":"get"}`, wantField: "method", wantErr: "want GET or HEAD"},
		{name: "fetch negative timeout", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","timeout":"-1s"}`, wantField: "timeout", wantErr: "want more than 0 and at most 2m0s"},
		{name: "fetch timeout too long", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","timeout":"1h"}`, wantField: "timeout", wantErr: "at most 2m0s"},
		{name: "fetch timeout not a duration", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","timeout":"soon"}`, wantField: "timeout", wantErr: `want Go duration text like "1.5s" or a number of seconds`},
		{name: "fetch misspelt field", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","methd":"GET"}`, wantField: "methd", wantErr: "unknown field; want url, method or timeout"},
		{name: "fetch field in the wrong case", typ: TypeHTTPFetch, payload: `{"URL":"http://example.com"}`, wantField: "URL", wantErr: "unknown field"},
		{name: "fetch url twice", typ: TypeHTTPFetch, payload: `{"url":"http://example.com","url":"http://10.0.0.1"}`, wantField: "url", wantErr: "given twice"},
		{name: "fetch array", typ: TypeHTTPFetch, payload: `["http://example.com"]`, wantErr: "want a JSON object with the fields url, method or timeout"},

		{name: "sleep text", typ: TypeSleep, payload: `{"duration":"1.5s"}`},
		{name: "sleep seconds", typ: TypeSleep, payload: `{"duration":1.5}`},
		{name: "sleep 0", typ: TypeSleep, payload: `{"duration":0}`},
		{name: "sleep the most", typ: TypeSleep, payload: `{"duration":3600}`},
		{name: "sleep negative", typ: TypeSleep, payload: `{"duration":"-1s"}`, wantField: "duration", wantErr: "-1s: want 0 to 1h0m0s"},
		{name: "sleep negative seconds", typ: TypeSleep, payload: `{"duration":-1}`, wantField: "duration", wantErr: "want 0 to 1h0m0s"},
		{name: "sleep too long", typ: TypeSleep, payload: `{"duration":"1h0m1s"}`, wantField: "duration", wantErr: "want 0 to 1h0m0s"},
		{name: "sleep 1e300", typ: TypeSleep, payload: `{"duration":1e300}`, wantField: "duration", wantErr: "1e300: out of range"},
		{name: "sleep 1e300 text", typ: TypeSleep, payload: `{"duration":"1e300s"}`, wantField: "duration", wantErr: "want Go duration text"},
		{name: "sleep NaN", typ: TypeSleep, payload: `{"duration":NaN}`, wantErr: "not JSON"},
		{name: "sleep NaN text", typ: TypeSleep, payload: `{"duration":"NaN"}`, wantField: "duration", wantErr: "want Go duration text"},
		{name: "sleep null duration", typ: TypeSleep, payload: `{"duration":null}`, wantField: "duration", wantErr: "want Go duration text"},
		{name: "sleep bool", typ: TypeSleep, payload: `{"duration":true}`, wantField: "duration", wantErr: "want Go duration text"},
		{name: "sleep without duration", typ: TypeSleep, payload: `{}`, wantField: "duration", wantErr: "missing; want 0 to 1h0m0s"},
		{name: "sleep misspelt field", typ: TypeSleep, payload: `{"durration":"1s"}`, wantField: "durration", wantErr: "unknown field; want duration"},

		{name: "echo object", typ: TypeEcho, payload: `{"a":[1,2]}`},
		{name: "echo null", typ: TypeEcho, payload: `null`},
		{name: "echo nothing", typ: TypeEcho, payload: ``},
		{name: "echo white space around", typ: TypeEcho, payload: " {} \n"},
		{name: "echo array", typ: TypeEcho, payload: `[1,2]`, wantErr: "want a JSON object"},
		{name: "echo string", typ: TypeEcho, payload: `"text"`, wantErr: "want a JSON object"},
		{name: "echo trailing bracket", typ: TypeEcho, payload: `{"type":"echo"}]`, wantErr: "data after the JSON value, at byte 15"},
		{name: "echo two objects", typ: TypeEcho, payload: `{}{}`, wantErr: "data after the JSON value"},
		{name: "echo unfinished", typ: TypeEcho, payload: `{"a":`, wantErr: "not JSON"},
		{name: "echo invalid UTF-8", typ: TypeEcho, payload: "{\"a\":\"\xff\"}", wantErr: "invalid UTF-8 at byte 6"},

		{name: "fail", typ: TypeFail, payload: `{"message":"boom"}`},
		{name: "fail null", typ: TypeFail, payload: `null`},
		{name: "fail empty object", typ: TypeFail, payload: `{}`},
		{name: "fail message not a string", typ: TypeFail, payload: `{"message":5}`, wantField: "message", wantErr: "a JSON number; want a string"},
		{name: "fail misspelt field", typ: TypeFail, payload: `{"msg":"boom"}`, wantField: "msg", wantErr: "unknown field; want message"},
		{name: "fail invalid UTF-8", typ: TypeFail, payload: "{\"message\":\"\xc3\x28\"}", wantErr: "invalid UTF-8 at byte 12"},
		{name: "fail trailing data", typ: TypeFail, payload: `{"message":"boom"} x`, wantErr: "data after the JSON value"},
	}
	mux := NewMux()
	Builtins(mux, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mux.Validate(tt.typ, json.RawMessage(tt.payload))
			checkPayloadErr(t, "Validate", err, tt.wantField, tt.wantErr)
			if tt.wantErr == "" || tt.typ == TypeEcho {
				return // echo runs any payload on a worker, and the rest would run for real
			}
			_, err = runBuiltin(context.Background(), t, tt.typ, tt.payload)
			checkPayloadErr(t, "handler", err, tt.wantField, tt.wantErr)
			if !errors.Is(err, ErrSkipRetry) {
				t.Errorf("handler: err = %v, want it not retried", err)
			}
		})
	}
}

// checkPayloadErr checks that err is nil when want is "", and otherwise
// a *PayloadError for field saying want.
func checkPayloadErr(t *testing.T, what string, err error, field, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: err = %v, want none", what, err)
		}
		return
	}
	var pe *PayloadError
	if !errors.As(err, &pe) || pe.Field != field || !strings.Contains(pe.Reason, want) {
		t.Errorf("%s: err = %v, want a *PayloadError for field %q saying %q", what, err, field, want)
	}
}
