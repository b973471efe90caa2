// Package chattest is what the chat frontends' tests share: a bot's Deps
// on a real redis-server, a local server standing in for a platform's API
// that records the calls botfleet makes, a real worker run in-process,
// and lookups of the bot's metrics and logs.
package chattest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging/logtest"
	"github.com/botfleet/botfleet/worker"
)

// Wait is how long a test waits for a change it caused before failing.
// It is generous: a loaded 2-core machine running -race is slow, and a
// test never waits longer than its change takes.
const Wait = 30 * time.Second

// Env is a bot's surroundings for a frontend under test.
type Env struct {
	Redis    *redistest.Server
	RDB      *redis.Client
	Registry *prometheus.Registry
	Metrics  *bot.Metrics
	Logs     *logtest.Recorder
	Queue    *jobs.Queue
	Types    *jobs.Mux
}

// New starts a redis-server and returns an Env on it with the built-in job
// types, a fresh registry and a log recorder.
func New(t testing.TB) *Env {
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
	return &Env{Redis: srv, RDB: rdb, Registry: reg, Metrics: m, Logs: logtest.NewRecorder(),
		Queue: jobs.NewQueue(rdb, "", jobs.QueueOptions{}), Types: mux}
}

// Deps returns what the bot would give the frontend name, with chat's
// options, its records going to e.Logs.
func (e *Env) Deps(name string, chat bot.ChatOptions) bot.Deps {
	return bot.Deps{Name: name, Queue: e.Queue, Types: e.Types, Metrics: e.Metrics,
		Logger: bot.FrontendLogger(e.Logs.Logger(), name), Redis: e.RDB, Chat: chat}
}

// Serve mounts f's routes on a local server, as the bot would, and runs f
// until the test ends. It returns the server's URL.
func Serve(t testing.TB, f bot.Frontend) string {
	t.Helper()
	mux := http.NewServeMux()
	f.Mount(func(pattern string, h http.Handler, _ bool) { mux.Handle(pattern, h) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	Go(t, f.Run)
	return srv.URL
}

// StartBot runs a real bot (bot.New, then Run) on e's Redis, listening
// on loopback, logging into e.Logs, with chat's options and the frontends
// add adds, until the test ends. It returns the bot's URL and the
// registry its metrics are on.
func (e *Env) StartBot(t testing.TB, chat bot.ChatOptions, add func(*bot.Bot) error) (string, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := bot.New(bot.Options{Redis: e.RDB, Addr: "127.0.0.1:0", Logger: e.Logs.Logger(), Registry: reg, Chat: chat})
	if err != nil {
		t.Fatal(err)
	}
	if err := add(b); err != nil {
		t.Fatal(err)
	}
	Go(t, b.Run)
	<-b.Started()
	if b.URL() == "" {
		t.Fatal("the bot did not start")
	}
	return b.URL(), reg
}

// Go runs fn until the test ends, then cancels its context and waits for
// it to return; an error other than a cancellation fails the test.
func Go(t testing.TB, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
	})
}

// StartWorker runs a real worker of the built-in types on e's Redis until
// the test ends.
func (e *Env) StartWorker(t testing.TB, id string) {
	t.Helper()
	StartWorker(t, e.RDB, id)
}

// StartWorker runs a real worker of the built-in types on rdb until the
// test ends.
func StartWorker(t testing.TB, rdb redis.UniversalClient, id string) {
	t.Helper()
	w, err := worker.New(worker.Options{Redis: rdb, Addr: "127.0.0.1:0", ID: id, HeartbeatInterval: 500 * time.Millisecond,
		RetryBackoff: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	Go(t, w.Run)
}

// Counter returns the value of the counter name with the given label
// pairs ("frontend", "telegram_bot", ...) in e's registry; 0 when absent.
func (e *Env) Counter(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	return Counter(t, e.Registry, name, labels...)
}

// Counter returns the value of the counter name with the given label
// pairs in g; 0 when absent.
func Counter(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// Records returns the records logged with message.
func (e *Env) Records(message string) []logtest.Record {
	var out []logtest.Record
	for _, r := range e.Logs.Records() {
		if r.Message == message {
			out = append(out, r)
		}
	}
	return out
}

// NoneContains fails the test if any record's attributes mention one of
// secrets (user ids, phone numbers, tokens) in clear.
func (e *Env) NoneContains(t testing.TB, secrets ...string) {
	t.Helper()
	for _, r := range e.Logs.Records() {
		for k, v := range r.Attrs {
			s := fmt.Sprint(v)
			for _, secret := range secrets {
				if strings.Contains(s, secret) || strings.Contains(r.Message, secret) {
					t.Errorf("record %q: %s=%q holds %q in clear", r.Message, k, s, secret)
				}
			}
		}
	}
}

// WaitFor polls cond every 10ms until it holds, failing the test after
// Wait.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Call is one request an API received.
type Call struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// API stands in for a platform's HTTP API on loopback: it records every
// call, then answers it with the handler registered for its pattern
// (404 when none is). It is safe for concurrent use.
type API struct {
	URL string
	mux *http.ServeMux
	mu  sync.Mutex
	log []Call
}

// NewAPI starts an API, closed when the test ends.
func NewAPI(t testing.TB) *API {
	t.Helper()
	a := &API{mux: http.NewServeMux()}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Handle answers the calls matching pattern (an http.ServeMux pattern)
// with h, which reads the body from the request as usual.
func (a *API) Handle(pattern string, h http.HandlerFunc) { a.mux.HandleFunc(pattern, h) }

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.log = append(a.log, Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	a.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	a.mux.ServeHTTP(w, r)
}

// Calls returns the calls made to path so far, oldest first; every call
// when path is "".
func (a *API) Calls(path string) []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Call
	for _, c := range a.log {
		if path == "" || c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// WaitCalls waits until path has had at least n calls and returns them.
func (a *API) WaitCalls(t testing.TB, path string, n int) []Call {
	t.Helper()
	var calls []Call
	WaitFor(t, "calls to "+path, func() bool {
		calls = a.Calls(path)
		return len(calls) >= n
	})
	return calls
}
