package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"time"
)

// The built-in job types Builtins registers.
const (
	TypeHTTPFetch = "http.fetch"
	TypeSleep     = "sleep"
	TypeEcho      = "echo"
	TypeFail      = "fail"
)

// MaxSleep is the longest a sleep job sleeps.
const MaxSleep = time.Hour

// SleepPayload is the payload of a sleep job.
type SleepPayload struct {
	Duration Duration `json:"duration"` // required, 0 to MaxSleep
}

// FailPayload is the payload of a fail job.
type FailPayload struct {
	Message string `json:"message,omitempty"`
}

// Duration is a time.Duration in JSON: "1.5s" (Go duration text) or 1.5
// (seconds) when read, Go duration text when written.
type Duration time.Duration

// UnmarshalJSON reads "1.5s" or 1.5.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want Go duration text like \"1.5s\" or a number of seconds", s)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err == nil && (math.IsNaN(f) || math.Abs(f) > float64(math.MaxInt64)/1e9) {
		return fmt.Errorf("duration %.40s: out of range; want Go duration text like \"1.5s\" or a number of seconds", b)
	}
	if err != nil {
		return fmt.Errorf("duration %.40s: want Go duration text like \"1.5s\" or a number of seconds", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes Go duration text, "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// BuiltinOptions configures the built-in job types. Nil or the zero value
// means the defaults.
type BuiltinOptions struct {
	Fetch FetchOptions
	// Logger receives the DEBUG records that say why an http.fetch
	// destination was refused or unreachable, which the job's error does not
	// (see ErrFetchUnreachable). Nil means slog.Default().
	Logger *slog.Logger
}

// Builtins registers the built-in job types on mux, each with its payload
// validator, so a fleet has real work out of the box:
//
//	http.fetch  {"url": "https://...", "method": "GET", "timeout": "5s"} -> {"status": 200, "bytes": 1256, "duration_ms": 48.2}
//	sleep       {"duration": "1.5s"} or {"duration": 1.5} -> {"slept_ms": 1500}
//	echo        a JSON object -> the same JSON
//	fail        {"message": "boom"} -> always fails with that message
//
// Payloads are JSON objects (null or none counts as {}) in valid UTF-8,
// with nothing after them; a field that is unknown (misspelt, or in the
// wrong case) or given twice is refused by name. Per type:
//
//   - http.fetch: "url" required, http or https with a host; "method" GET
//     (default) or HEAD; "timeout" more than 0 and at most MaxFetchTimeout
//     (2m); 0 or none means FetchOptions.Timeout (10s). Destinations other than
//     public addresses are refused unless FetchOptions.Allow opens them;
//     at most FetchOptions.MaxBytes (10 MiB) of a body is read and
//     FetchOptions.MaxRedirects (5) redirects followed.
//   - sleep: "duration" required, 0 to MaxSleep (1h), as Go duration text
//     or seconds.
//   - echo: any JSON object (a worker echoes any JSON it is given).
//   - fail: "message", a string, optional.
//
// Mux.Validate applies these rules before a job is accepted; the handlers
// apply them again, since a job may come from any producer, and fail a job
// whose payload breaks them without retries. Builtins panics if
// opts.Fetch.Allow holds an entry ParseFetchAllow refuses.
func Builtins(mux *Mux, opts *BuiltinOptions) {
	if opts == nil {
		opts = &BuiltinOptions{}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	f, err := newFetcher(opts.Fetch, logger, &net.Dialer{Timeout: MaxFetchTimeout, KeepAlive: 30 * time.Second})
	if err != nil {
		panic("jobs: Builtins: " + err.Error())
	}
	mux.HandleFunc(TypeHTTPFetch, f.fetch, WithValidate(validateFetch))
	mux.HandleFunc(TypeSleep, sleepJob, WithValidate(func(p json.RawMessage) error {
		_, err := decodeSleep(p)
		return err
	}))
	mux.HandleFunc(TypeEcho, echo, WithValidate(validateEcho))
	mux.HandleFunc(TypeFail, fail, WithValidate(validateFail))
}

// decodeSleep reads and checks a sleep payload.
func decodeSleep(payload json.RawMessage) (time.Duration, error) {
	var p SleepPayload
	given, err := decodePayload(payload, &p)
	d := time.Duration(p.Duration)
	switch {
	case err != nil:
		return 0, err
	case !given["duration"]:
		return 0, payloadErr("duration", `missing; want 0 to %v, as Go duration text ("1.5s") or seconds (1.5)`, MaxSleep)
	case d < 0 || d > MaxSleep:
		return 0, payloadErr("duration", "%v: want 0 to %v", d, MaxSleep)
	}
	return d, nil
}

func sleepJob(ctx context.Context, job *Job) (any, error) {
	d, err := decodeSleep(job.Payload)
	if err != nil {
		return nil, refused(job, err)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return map[string]int64{"slept_ms": d.Milliseconds()}, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// validateEcho accepts a JSON object, or null (no payload). The handler
// echoes any JSON: a job from another producer may carry any.
func validateEcho(payload json.RawMessage) error {
	if err := checkJSON(payload); err != nil {
		return err
	}
	if p := bytes.TrimSpace(payload); !isNull(p) && p[0] != '{' {
		return payloadErr("", "want a JSON object")
	}
	return nil
}

func echo(_ context.Context, job *Job) (any, error) {
	return job.Payload, nil
}

func validateFail(payload json.RawMessage) error {
	_, err := decodePayload(payload, &FailPayload{})
	return err
}

func fail(_ context.Context, job *Job) (any, error) {
	var p FailPayload
	if _, err := decodePayload(job.Payload, &p); err != nil {
		return nil, refused(job, err)
	}
	if p.Message == "" {
		return nil, errors.New("fail: this job type always fails")
	}
	return nil, errors.New(p.Message)
}
