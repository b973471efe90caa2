// Package logtest captures log records in tests, the Go counterpart of
// pytest's caplog: a test logs through botfleet's context binding and
// redaction as production code does, then asserts on the records and their
// attributes.
//
//	rec := logtest.Capture(t)
//	logging.Bind("service", "test", "worker_id", "test-worker")
//	slog.Info("Test message", "custom_field", "value")
//	r := rec.Records()[0]
//	// r.Attrs["service"] == "test", r.Attrs["custom_field"] == "value"
package logtest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging"
)

// Record is one captured record. Attrs holds the bound context fields and
// the record's attributes by key, with resolved Go values (string, int64,
// uint64, float64, bool, time.Duration, time.Time, or the value itself);
// a group is a nested map[string]any.
type Record struct {
	Time    time.Time
	Level   slog.Level
	Message string
	Attrs   map[string]any
}

// Recorder collects records. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	records []Record
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Handler returns a handler, at DEBUG and above, that records into r with
// the bound context and redaction applied.
func (r *Recorder) Handler() slog.Handler {
	return logging.NewContextHandler(sink{r}, &logging.HandlerOptions{Level: slog.LevelDebug})
}

// Logger returns a logger over Handler.
func (r *Recorder) Logger() *slog.Logger { return slog.New(r.Handler()) }

// Records returns a copy of what was recorded so far, oldest first.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// Messages returns the messages recorded so far, oldest first.
func (r *Recorder) Messages() []string {
	var out []string
	for _, rec := range r.Records() {
		out = append(out, rec.Message)
	}
	return out
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.records = nil
	r.mu.Unlock()
}

// Capture installs a Recorder as slog.Default() for the rest of the test,
// and puts back the previous default logger and the process-wide bindings
// when the test ends. Tests using it must not run in parallel with others
// that use the default logger.
func Capture(t testing.TB) *Recorder {
	t.Helper()
	prev := slog.Default()
	bindings := logging.Bindings()
	rec := NewRecorder()
	slog.SetDefault(rec.Logger())
	t.Cleanup(func() {
		slog.SetDefault(prev)
		bindings.Restore()
	})
	return rec
}

// sink is the slog.Handler at the end of the chain.
type sink struct{ r *Recorder }

func (s sink) Enabled(context.Context, slog.Level) bool { return true }
func (s sink) WithAttrs([]slog.Attr) slog.Handler       { return s } // ContextHandler keeps attrs itself
func (s sink) WithGroup(string) slog.Handler            { return s }

func (s sink) Handle(_ context.Context, r slog.Record) error {
	rec := Record{Time: r.Time, Level: r.Level, Message: r.Message, Attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		put(rec.Attrs, a)
		return true
	})
	s.r.mu.Lock()
	s.r.records = append(s.r.records, rec)
	s.r.mu.Unlock()
	return nil
}

func put(m map[string]any, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() != slog.KindGroup {
		if a.Key != "" {
			m[a.Key] = v.Any()
		}
		return
	}
	if a.Key == "" {
		for _, ga := range v.Group() {
			put(m, ga)
		}
		return
	}
	sub := map[string]any{}
	for _, ga := range v.Group() {
		put(sub, ga)
	}
	if len(sub) > 0 {
		m[a.Key] = sub
	}
}
