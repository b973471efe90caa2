package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/botfleet/botfleet/internal/netguard"
)

// Limits of http.fetch; FetchOptions changes the defaults.
const (
	// DefaultFetchTimeout limits a fetch whose payload sets no timeout:
	// connecting, redirects, headers and body together.
	DefaultFetchTimeout = 10 * time.Second
	// MaxFetchTimeout is the longest timeout a payload or FetchOptions may set.
	MaxFetchTimeout = 2 * time.Minute
	// DefaultFetchMaxBytes is how much of a response body is read; the rest
	// is not downloaded and the result says "truncated".
	DefaultFetchMaxBytes = 10 << 20
	// DefaultFetchMaxRedirects is how many redirects a fetch follows.
	DefaultFetchMaxRedirects = 5
)

// FetchPayload is the payload of an http.fetch job.
type FetchPayload struct {
	URL     string   `json:"url"`               // required: http or https, with a host
	Method  string   `json:"method,omitempty"`  // GET (the default) or HEAD
	Timeout Duration `json:"timeout,omitempty"` // more than 0, at most MaxFetchTimeout; default FetchOptions.Timeout
}

// fetchMethods are the methods http.fetch sends: none that changes
// anything at the destination, and no request body.
var fetchMethods = []string{http.MethodGet, http.MethodHead}

// FetchResult is the result of an http.fetch job. Any HTTP response is a
// success, whatever its status; failing to get one (refused, timed out)
// fails the attempt.
type FetchResult struct {
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`       // of the body read, at most FetchOptions.MaxBytes
	DurationMS float64 `json:"duration_ms"` // request sent to body read
	Truncated  bool    `json:"truncated,omitempty"`
}

// ErrFetchUnreachable is the error of every http.fetch whose destination
// is refused (a loopback, private, link-local, metadata or other
// special-purpose address, or a redirect to a scheme other than http or
// https) or cannot be connected to (no such host, connection refused, no
// route, timed out connecting). One text for all, so that a submitter
// cannot map what the worker can reach: a refused address looks like a
// closed port. The worker logs the cause at DEBUG. It is retried like any
// other failure.
var ErrFetchUnreachable = errors.New("http.fetch: destination refused or unreachable (local, private and metadata addresses need HTTP_FETCH_ALLOW)")

// FetchOptions configures the http.fetch job type. The zero value gives
// the defaults: no special-purpose destination allowed, DefaultFetchMaxBytes,
// DefaultFetchTimeout and DefaultFetchMaxRedirects.
type FetchOptions struct {
	// Allow opens destinations refused by default: host names
	// ("files.internal", or "*.internal" for any name under it; trusted
	// whatever they resolve to), IP addresses ("10.1.2.3") and CIDR prefixes
	// ("10.0.0.0/8", "127.0.0.0/8"). Everything else that resolves to a
	// loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
	// fe80::/10), shared (100.64.0.0/10), multicast, unspecified or other
	// special-purpose address, in any IPv4 or IPv6 form, or is a cloud
	// metadata name, is refused. ParseFetchAllow reads the list from
	// HTTP_FETCH_ALLOW; Builtins panics on an entry it would refuse.
	Allow []string
	// MaxBytes is how much of a response body is read (default
	// DefaultFetchMaxBytes, 10 MiB); the rest is not downloaded.
	MaxBytes int64
	// Timeout limits a fetch whose payload sets no timeout (default
	// DefaultFetchTimeout, 10s; at most MaxFetchTimeout).
	Timeout time.Duration
	// MaxRedirects is how many redirects a fetch follows (default
	// DefaultFetchMaxRedirects, 5); negative means none: a 3xx response is
	// the result. Each redirect's destination is checked like the first.
	MaxRedirects int
}

// ParseFetchAllow reads HTTP_FETCH_ALLOW, a comma-separated list of host
// names, IP addresses and CIDR prefixes (see FetchOptions.Allow), into
// FetchOptions.Allow. Empty means none. The error names the variable, the
// first bad entry and what an entry may be.
func ParseFetchAllow(value string) ([]string, error) {
	var entries []string
	for e := range strings.SplitSeq(value, ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	if _, err := netguard.New(entries); err != nil {
		return nil, fmt.Errorf("HTTP_FETCH_ALLOW=%q: %w, comma-separated", value, err)
	}
	return entries, nil
}

// fetcher runs http.fetch jobs. It is safe for concurrent use.
type fetcher struct {
	client   *http.Client
	maxBytes int64
	timeout  time.Duration
	logger   *slog.Logger
}

// newFetcher returns a fetcher that dials as d does, through the guard.
func newFetcher(opts FetchOptions, logger *slog.Logger, d *net.Dialer) (*fetcher, error) {
	guard, err := netguard.New(opts.Allow)
	if err != nil {
		return nil, fmt.Errorf("FetchOptions.Allow: %w", err)
	}
	f := &fetcher{maxBytes: opts.MaxBytes, timeout: min(opts.Timeout, MaxFetchTimeout), logger: logger}
	if f.maxBytes <= 0 {
		f.maxBytes = DefaultFetchMaxBytes
	}
	if f.timeout <= 0 {
		f.timeout = DefaultFetchTimeout
	}
	maxRedirects := opts.MaxRedirects
	if maxRedirects == 0 {
		maxRedirects = DefaultFetchMaxRedirects
	}
	f.client = &http.Client{
		Transport: &http.Transport{
			// No proxy: through one, the only address the guard would see is
			// the proxy's.
			Proxy:                  nil,
			DialContext:            guard.DialContext(d),
			TLSHandshakeTimeout:    10 * time.Second,
			MaxIdleConns:           16,
			IdleConnTimeout:        30 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			switch {
			case maxRedirects < 0:
				return http.ErrUseLastResponse
			case len(via) > maxRedirects:
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			case req.URL.Scheme != "http" && req.URL.Scheme != "https":
				return fmt.Errorf("%w: redirect to a %q URL", netguard.ErrRefused, req.URL.Scheme)
			}
			return nil
		},
	}
	return f, nil
}

func (f *fetcher) fetch(ctx context.Context, job *Job) (any, error) {
	p, u, err := decodeFetch(job.Payload)
	if err != nil {
		return nil, refused(job, err)
	}
	method := cmp.Or(p.Method, http.MethodGet)
	timeout := f.timeout
	if p.Timeout > 0 {
		timeout = time.Duration(p.Timeout)
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// connecting is true from asking the transport for a connection to
	// getting one: an error meanwhile, even the timeout, is about the
	// destination, and is reported as ErrFetchUnreachable.
	var connecting atomic.Bool
	reqCtx = httptrace.WithClientTrace(reqCtx, &httptrace.ClientTrace{
		GetConn: func(string) { connecting.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { connecting.Store(false) },
	})
	req, err := http.NewRequestWithContext(reqCtx, method, u.String(), nil)
	if err != nil {
		return nil, refused(job, payloadErr("url", "%v", err))
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.failed(ctx, u, err, connecting.Load())
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("http.fetch: read body of %s: %w", u.Redacted(), err)
	}
	took := time.Since(start)
	return FetchResult{
		Status:     resp.StatusCode,
		Bytes:      min(n, f.maxBytes),
		DurationMS: math.Round(float64(took.Microseconds())) / 1e3,
		Truncated:  n > f.maxBytes,
	}, nil
}

// failed turns the error of a request to u into the job's error.
func (f *fetcher) failed(ctx context.Context, u *url.URL, err error, connecting bool) error {
	if ctx.Err() != nil {
		return context.Cause(ctx) // the job was cancelled, not the fetch
	}
	if connecting || errors.Is(err, netguard.ErrRefused) {
		f.logger.DebugContext(ctx, "http.fetch destination refused or unreachable", "url", u.Redacted(), "error", err)
		return ErrFetchUnreachable
	}
	return err
}

// decodeFetch reads and checks an http.fetch payload.
func decodeFetch(payload json.RawMessage) (FetchPayload, *url.URL, error) {
	var p FetchPayload
	if _, err := decodePayload(payload, &p); err != nil {
		return p, nil, err
	}
	u, err := url.Parse(p.URL)
	switch {
	case p.URL == "":
		return p, nil, payloadErr("url", "missing; want an http or https URL")
	case err != nil:
		return p, nil, payloadErr("url", "%.100q is not a URL; want an http or https URL", p.URL)
	case u.Scheme != "http" && u.Scheme != "https":
		return p, nil, payloadErr("url", "%.100q: want an http or https URL", p.URL)
	case u.Hostname() == "":
		return p, nil, payloadErr("url", "%.100q has no host; want http://host/... or https://host/...", p.URL)
	}
	if p.Method != "" && !slices.Contains(fetchMethods, p.Method) {
		return p, nil, payloadErr("method", "%.20q: want %s", p.Method, strings.Join(fetchMethods, " or "))
	}
	if t := time.Duration(p.Timeout); t < 0 || t > MaxFetchTimeout {
		return p, nil, payloadErr("timeout", "%v: want more than 0 and at most %v (0 or none: the worker's default)", t, MaxFetchTimeout)
	}
	return p, u, nil
}

func validateFetch(payload json.RawMessage) error {
	_, _, err := decodeFetch(payload)
	return err
}
