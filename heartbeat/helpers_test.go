package heartbeat

import (
	"bufio"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
)

// epoch is where fake clocks start: 1688851200.123, the design's example.
var epoch = time.Unix(1688851200, 123e6).UTC()

// fakeClock is a Clock that moves only when a test advances it. It counts
// the calls to After: the Beater's loop calls After once after every beat,
// so the count tells a test how many beats are done.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	afters  int
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.afters++
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
	c.waiters = kept
}

func (c *fakeClock) Afters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.afters
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitBeats waits until the loop has finished n beats (and is waiting for
// the next one).
func waitBeats(t testing.TB, c *fakeClock, n int) {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+" beats", func() bool { return c.Afters() >= n })
	if got := c.Afters(); got != n {
		t.Fatalf("beats done: got %d, want %d", got, n)
	}
}

// newClient returns a client of srv as a worker should configure it:
// honouring context deadlines, so the beat's timeout bounds it, and failing
// fast while the server is down, so outage tests do not wait on go-redis's
// own retries.
func newClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// worker is a fake worker whose status a test changes between beats.
type worker struct {
	mu sync.Mutex
	s  Status
}

func newWorker(id string) *worker {
	return &worker{s: Status{
		Identity: Identity{
			WorkerID:      id,
			Service:       "worker",
			Hostname:      "bot-server-01",
			ContainerID:   "a1b2c3d4e5f6",
			DeploymentEnv: "production",
			Region:        "us-west-1",
			Version:       "v1.4.2",
		},
		State:         "IDLE",
		StartedAt:     epoch.Add(-time.Hour),
		JobsProcessed: 42,
		JobsFailed:    3,
		CurrentJob:    "",
		MetricsURL:    "http://10.0.3.17:9200/metrics",
		Resources:     Resources{MemoryMB: 245.7, MemoryPercent: 2.4, CPUPercent: 15.3, NumThreads: 12, OpenFiles: 9},
		System:        System{Hostname: "bot-server-01", Platform: "linux-6.1.0-amd64", GoVersion: "go1.26.0", PID: 4242},
	}}
}

func (w *worker) Report() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s
}

func (w *worker) set(f func(*Status)) {
	w.mu.Lock()
	f(&w.s)
	w.mu.Unlock()
}

// fixture is a Beater on a fresh redis-server with a fake clock.
type fixture struct {
	srv    *redistest.Server
	rdb    *redis.Client // the Beater's client
	admin  *redis.Client // for inspecting Redis, not counted by hooks
	clock  *fakeClock
	worker *worker
	b      *Beater
}

// newFixture starts a redis-server and builds a Beater for worker-1 on it;
// edit adjusts the options, hooks are added to the Beater's client.
func newFixture(t *testing.T, edit func(*Options), hooks ...redis.Hook) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	f := &fixture{srv: srv, rdb: newClient(t, srv), admin: srv.Client(t), clock: newFakeClock(), worker: newWorker("worker-1")}
	for _, h := range hooks {
		f.rdb.AddHook(h)
	}
	o := Options{Report: f.worker.Report, Clock: f.clock, Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&o)
	}
	b, err := New(f.rdb, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.b = b
	return f
}

// start starts the Beater, waits until its loop waits for the next beat
// (so that advancing the clock reaches it), and stops it when the test ends.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	if err := f.b.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = f.b.Stop(context.Background()) })
	waitBeats(t, f.clock, 1)
}

func (f *fixture) hash(t testing.TB, id string) map[string]string {
	t.Helper()
	h, err := f.admin.HGetAll(context.Background(), KeyPrefix+id).Result()
	if err != nil {
		t.Fatalf("HGETALL: %v", err)
	}
	return h
}

// info returns the fields of an INFO section of rdb's server.
func info(t testing.TB, rdb *redis.Client, section string) map[string]string {
	t.Helper()
	text, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// execCalls returns how many EXEC commands the server ran since the last
// CONFIG RESETSTAT.
func execCalls(t testing.TB, rdb *redis.Client) int {
	t.Helper()
	stat := info(t, rdb, "commandstats")["cmdstat_exec"] // calls=4,usec=...
	if stat == "" {
		return 0
	}
	calls, _, _ := strings.Cut(strings.TrimPrefix(stat, "calls="), ",")
	n, err := strconv.Atoi(calls)
	if err != nil {
		t.Fatalf("cmdstat_exec %q: %v", stat, err)
	}
	return n
}

// counter is a go-redis hook counting round trips: single commands and
// pipelines (a MULTI/EXEC transaction is one), with the names of each
// pipeline's commands and the most pipelines ever in flight at once. The
// handshake go-redis does once per new connection (HELLO, CLIENT ...) is
// counted apart, in handshakes.
type counter struct {
	commands   atomic.Int64
	pipelines  atomic.Int64
	handshakes atomic.Int64
	inFlight   atomic.Int64
	maxFlight  atomic.Int64

	mu      sync.Mutex
	names   [][]string
	gate    chan struct{} // when set, the next pipeline blocks until it is closed
	entered chan struct{}
}

// isHandshake reports whether cmds are go-redis's connection set-up.
func isHandshake(cmds ...redis.Cmder) bool {
	for _, cmd := range cmds {
		if n := cmd.Name(); n != "hello" && n != "client" {
			return false
		}
	}
	return true
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isHandshake(cmd) {
			c.handshakes.Add(1)
		} else {
			c.commands.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if isHandshake(cmds...) {
			c.handshakes.Add(1)
			return next(ctx, cmds)
		}
		c.pipelines.Add(1)
		n := c.inFlight.Add(1)
		defer c.inFlight.Add(-1)
		for {
			m := c.maxFlight.Load()
			if n <= m || c.maxFlight.CompareAndSwap(m, n) {
				break
			}
		}
		var names []string
		for _, cmd := range cmds {
			names = append(names, cmd.Name())
		}
		c.mu.Lock()
		c.names = append(c.names, names)
		gate, entered := c.gate, c.entered
		c.gate, c.entered = nil, nil
		c.mu.Unlock()
		if gate != nil {
			close(entered)
			<-gate
		}
		return next(ctx, cmds)
	}
}

// hold makes the next pipeline wait until release is closed; entered is
// closed when it starts waiting.
func (c *counter) hold() (entered <-chan struct{}, release chan<- struct{}) {
	e, r := make(chan struct{}), make(chan struct{})
	c.mu.Lock()
	c.gate, c.entered = r, e
	c.mu.Unlock()
	return e, r
}

func (c *counter) pipelineNames() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]string(nil), c.names...)
}
