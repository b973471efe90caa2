package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
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

// Limits of the built-in handlers.
const (
	DefaultFetchTimeout = 10 * time.Second
	MaxFetchTimeout     = 2 * time.Minute
	// MaxFetchBody is how much of a response http.fetch reads; the rest is
	// not downloaded and the result says "truncated".
	MaxFetchBody = 10 << 20
	MaxSleep     = time.Hour
)

// FetchPayload is the payload of an http.fetch job.
type FetchPayload struct {
	URL     string   `json:"url"`               // http or https
	Timeout Duration `json:"timeout,omitempty"` // default DefaultFetchTimeout, at most MaxFetchTimeout
}

// FetchResult is the result of an http.fetch job. Any HTTP response is a
// success, whatever its status; failing to get one (refused, timed out)
// fails the attempt.
type FetchResult struct {
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`       // of the body read, at most MaxFetchBody
	DurationMS float64 `json:"duration_ms"` // request sent to body read
	Truncated  bool    `json:"truncated,omitempty"`
}

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

// Builtins registers the built-in job types on mux, so a fleet has real
// work out of the box:
//
//	http.fetch  {"url": "https://...", "timeout": "5s"} -> {"status": 200, "bytes": 1256, "duration_ms": 48.2}
//	sleep       {"duration": "1.5s"} or {"duration": 1.5} -> {"slept_ms": 1500}
//	echo        any JSON -> the same JSON
//	fail        {"message": "boom"} -> always fails with that message
//
// http.fetch sends GET requests with client (nil means a client of its own).
// A payload the handler cannot use fails the job without retries.
func Builtins(mux *Mux, client *http.Client) {
	if client == nil {
		client = &http.Client{}
	}
	mux.HandleFunc(TypeHTTPFetch, fetcher{client}.fetch)
	mux.HandleFunc(TypeSleep, sleep)
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

type fetcher struct{ client *http.Client }

func (f fetcher) fetch(ctx context.Context, job *Job) (any, error) {
	var p FetchPayload
	if err := decodeStrict(job, &p); err != nil {
		return nil, err
	}
	u, err := url.Parse(p.URL)
	switch {
	case p.URL == "":
		return nil, badPayload(job, `"url" is missing`)
	case err != nil:
		return nil, badPayload(job, `"url": %v`, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, badPayload(job, `"url" %q: want an http or https URL`, p.URL)
	case u.Host == "":
		return nil, badPayload(job, `"url" %q: no host`, p.URL)
	}
	timeout := time.Duration(p.Timeout)
	switch {
	case timeout == 0:
		timeout = DefaultFetchTimeout
	case timeout < 0 || timeout > MaxFetchTimeout:
		return nil, badPayload(job, `"timeout" %v: want more than 0 and at most %v`, timeout, MaxFetchTimeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, badPayload(job, `"url": %v`, err)
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, MaxFetchBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body of %s: %w", u.Redacted(), err)
	}
	took := time.Since(start)
	return FetchResult{
		Status:     resp.StatusCode,
		Bytes:      min(n, MaxFetchBody),
		DurationMS: math.Round(float64(took.Microseconds())) / 1e3,
		Truncated:  n > MaxFetchBody,
	}, nil
}

func sleep(ctx context.Context, job *Job) (any, error) {
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
