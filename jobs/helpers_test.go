package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/wire"
	"github.com/botfleet/botfleet/logging/logtest"
)

// waitTimeout bounds every wait for background work.
const waitTimeout = 15 * time.Second

// newRedis starts a redis-server for the test and returns a client of it.
func newRedis(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	return srv, srv.Client(t)
}

// testOptions are consumer options that keep tests fast: short leases and
// blocks, and records captured in rec.
func testOptions(rec *logtest.Recorder) ConsumerOptions {
	return ConsumerOptions{
		VisibilityTimeout: 300 * time.Millisecond,
		Backoff:           5 * time.Millisecond,
		Block:             50 * time.Millisecond,
		Logger:            rec.Logger(),
	}
}

// running is a consumer started by startConsumer.
type running struct {
	*Consumer
	runErr     chan error
	wantRunErr error // what Run should return; nil unless the test closes the client
	once       sync.Once
}

// startConsumer runs a consumer until the test ends (or stop is called).
func startConsumer(t *testing.T, rdb redis.UniversalClient, queue, name string, mux *Mux, o ConsumerOptions) *running {
	t.Helper()
	r := &running{Consumer: NewConsumer(rdb, queue, name, mux, o), runErr: make(chan error, 1)}
	go func() { r.runErr <- r.Run(context.Background()) }()
	t.Cleanup(func() { r.stop(t, 5*time.Second) })
	return r
}

// stop shuts the consumer down within timeout and checks that Run returned
// nil; it returns Shutdown's error.
func (r *running) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	var err error
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err = r.Shutdown(ctx)
		select {
		case runErr := <-r.runErr:
			if !errors.Is(runErr, r.wantRunErr) || (runErr == nil) != (r.wantRunErr == nil) {
				t.Errorf("Run = %v, want %v", runErr, r.wantRunErr)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return after Shutdown")
		}
	})
	return err
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus waits until the job's hash has status, and returns its Info.
func waitStatus(t *testing.T, q *Queue, id, status string) Info {
	t.Helper()
	return waitInfo(t, q, id, "to be "+status, func(info Info) bool { return info.Status == status })
}

// waitInfo waits until the job's hash says what ok wants, and returns its
// Info; on timeout it fails the test with the last Info read.
func waitInfo(t *testing.T, q *Queue, id, what string, ok func(Info) bool) Info {
	t.Helper()
	var info Info
	deadline := time.Now().Add(waitTimeout)
	for {
		var err error
		info, err = q.Get(context.Background(), id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Logf("Get(%s): %v", id, err)
		}
		if err == nil && ok(info) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for job %s %s; last Info = %+v", waitTimeout, id, what, info)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// enqueue enqueues a job or fails the test.
func enqueue(t *testing.T, q *Queue, typ string, payload any) Info {
	t.Helper()
	info, err := q.Enqueue(context.Background(), typ, payload)
	if err != nil {
		t.Fatalf("Enqueue(%s): %v", typ, err)
	}
	return info
}

// deadEntries returns the dead-letter stream's entries as string maps.
func deadEntries(t *testing.T, rdb redis.UniversalClient, queue string) []map[string]string {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), keysFor(queue, wire.IsCluster(rdb)).dead, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE dead: %v", err)
	}
	out := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		out[i] = make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			out[i][k], _ = v.(string)
		}
	}
	return out
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// hasRecord reports whether rec holds a record with msg at level.
func hasRecord(rec *logtest.Recorder, level slog.Level, msg string) bool {
	for _, r := range rec.Records() {
		if r.Level == level && r.Message == msg {
			return true
		}
	}
	return false
}

// fakeClock is a Clock that moves only when a test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// newFakeClock returns a clock at 1688851200 (2023-07-08 21:20:00 UTC).
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2023, 7, 8, 21, 20, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock by d and fires the waiters that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
}
