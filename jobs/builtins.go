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
	Duration Duration `json:"duration"` // at most MaxSleep
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
	if err != nil || math.IsNaN(f) || math.Abs(f) > float64(math.MaxInt64)/1e9 {
		return fmt.Errorf("duration %s: want Go duration text like \"1.5s\" or a number of seconds", b)
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

// Builtins registers the built-in job types on mux, so a fleet has real
// work out of the box:
//
//	http.fetch  {"url": "https://...", "timeout": "5s"} -> {"status": 200, "bytes": 1256, "duration_ms": 48.2}
//	sleep       {"duration": "1.5s"} or {"duration": 1.5} -> {"slept_ms": 1500}
//	echo        any JSON -> the same JSON
//	fail        {"message": "boom"} -> always fails with that message
//
// http.fetch sends GET requests to public destinations only, unless
// opts.Fetch.Allow opens others; see FetchOptions for its limits. A payload
// the handler cannot use fails the job without retries. Builtins panics if
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
	mux.HandleFunc(TypeHTTPFetch, f.fetch)
	mux.HandleFunc(TypeSleep, sleepJob)
	mux.HandleFunc(TypeEcho, echo)
	mux.HandleFunc(TypeFail, fail)
}

// decodeStrict decodes a builtin's payload, refusing unknown fields so a
// typo ("durration") is reported rather than ignored.
func decodeStrict(job *Job, v any) error {
	dec := json.NewDecoder(bytes.NewReader(job.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: bad payload: %w (%w)", job.Type, err, ErrSkipRetry)
	}
	return nil
}

func badPayload(job *Job, format string, args ...any) error {
	return fmt.Errorf("%s: bad payload: %s (%w)", job.Type, fmt.Sprintf(format, args...), ErrSkipRetry)
}

func sleepJob(ctx context.Context, job *Job) (any, error) {
	var p SleepPayload
	if err := decodeStrict(job, &p); err != nil {
		return nil, err
	}
	d := time.Duration(p.Duration)
	if d < 0 || d > MaxSleep {
		return nil, badPayload(job, `"duration" %v: want 0 to %v`, d, MaxSleep)
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

func echo(_ context.Context, job *Job) (any, error) {
	return job.Payload, nil
}

func fail(_ context.Context, job *Job) (any, error) {
	var p FailPayload
	if len(job.Payload) > 0 && string(job.Payload) != "null" {
		if err := decodeStrict(job, &p); err != nil {
			return nil, err
		}
	}
	if p.Message == "" {
		return nil, errors.New("fail: this job type always fails")
	}
	return nil, errors.New(p.Message)
}
