package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/clock"
	"github.com/botfleet/botfleet/internal/wire"
)

// Defaults of ConsumerOptions.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultBackoff           = time.Second
	DefaultBlock             = time.Second
	// MaxBackoff caps the doubling backoff, unless Backoff itself is longer.
	MaxBackoff = time.Minute
)

// ErrRunning is returned by Run on a Consumer already running; ErrStopped
// by Run after Shutdown.
var (
	ErrRunning = errors.New("jobs: consumer already running")
	ErrStopped = errors.New("jobs: consumer stopped")
)

// ConsumerOptions configure a Consumer. The zero value of every field is
// its default; so is a negative number.
type ConsumerOptions struct {
	// Concurrency is how many jobs run at once (WORKER_CONCURRENCY).
	// Default 1.
	Concurrency int
	// VisibilityTimeout is how long a job whose worker died stays with it
	// before another worker claims it (XAUTOCLAIM). A live worker renews
	// the lease on its jobs every third of it, so a long job is never
	// taken from a worker still running it. Default 30s.
	VisibilityTimeout time.Duration
	// MaxAttempts applies to jobs whose entry has no max_attempts of its
	// own. Default 3.
	MaxAttempts int
	// Backoff is the wait before the first retry; it doubles for each
	// further attempt, up to MaxBackoff (or Backoff, if longer). Default 1s.
	Backoff time.Duration
	// ResultTTL is how long a job's hash lives after its last change.
	// Default 24h.
	ResultTTL time.Duration
	// Block is how long one XREADGROUP waits for new jobs; it bounds how
	// fast Run notices its context is done, and how late a retry due on
	// another worker's schedule is moved back into the stream. Default 1s.
	Block time.Duration
	// DeadMaxLen caps the dead-letter stream (MAXLEN ~). Default 10000.
	DeadMaxLen int64
	// IndexMaxLen caps each index of jobs by status, as
	// QueueOptions.IndexMaxLen does. Default 100000.
	IndexMaxLen int64
	// OnStart is called before a handler runs a job, and OnFinish after,
	// with the handler's error (nil on success). They run on the job's
	// goroutine and must be safe for concurrent use when Concurrency > 1.
	// Entries dead-lettered without running (malformed, unknown type,
	// delivered too often) reach neither.
	OnStart  func(job *Job)
	OnFinish func(job *Job, took time.Duration, err error)
	// OnDead is called once per job that failed for good, when its dead
	// letter is written: after its last attempt failed, after an attempt
	// whose error wraps ErrSkipRetry, or when its entry was dead-lettered
	// without running (malformed, unknown type, delivered too often; job
	// then holds what could be read of the entry, its ID possibly empty).
	// err is the handler's error, or says why the entry was refused. It
	// counts failed jobs, where OnFinish's errors count failed attempts.
	// It runs on the goroutine that writes outcomes, so it must be quick;
	// it must be safe for concurrent use with the other hooks. A dead
	// letter whose write did not complete (Redis down at Shutdown) is not
	// reported; its job is delivered again.
	OnDead func(job *Job, err error)
	// Logger receives the consumer's records; job records are logged with
	// the job's context, so they carry job_id. Nil means slog.Default().
	Logger *slog.Logger
	// Clock is the time source of timestamps, retry times and the waits of
	// the consumer's loops; nil means the wall clock.
	Clock Clock
}

func (o ConsumerOptions) withDefaults() ConsumerOptions {
	pos := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	dur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pos(&o.Concurrency, 1)
	pos(&o.MaxAttempts, DefaultMaxAttempts)
	dur(&o.VisibilityTimeout, DefaultVisibilityTimeout)
	dur(&o.Backoff, DefaultBackoff)
	dur(&o.ResultTTL, DefaultResultTTL)
	dur(&o.Block, DefaultBlock)
	if o.DeadMaxLen <= 0 {
		o.DeadMaxLen = DefaultDeadMaxLen
	}
	if o.IndexMaxLen <= 0 {
		o.IndexMaxLen = DefaultIndexMaxLen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Clock = clock.Or(o.Clock)
	return o
}

// base is what the parts of a consumer share: where the queue is, who the
// consumer is, its options, and how it logs Redis trouble.
type base struct {
	rdb   redis.UniversalClient
	queue string
	name  string
	keys  keys
	o     ConsumerOptions
	clock Clock
	log   *slog.Logger
	redis *outage
}

// Consumer is the worker side of a queue: it reads jobs in the consumer
// group, runs them with the Mux's handlers, and records the outcome. It is
// safe for concurrent use; Run is called once, and Shutdown after it.
//
// Delivery is at least once: a job is acknowledged only after its outcome
// is written, so a worker that dies mid-job leaves it pending for another.
//
// A Consumer is four parts around a ledger of the deliveries it holds,
// each with its own goroutines, start and stop: the reader reads and
// claims entries while Run runs, the processor's workers run them, the
// committer writes their outcomes in batches, and the lease keeper renews
// the leases, hands back what waited too long and promotes due retries.
type Consumer struct {
	name string

	held    *ledger
	reader  *reader
	workers *processor
	com     *committer
	keeper  *keeper

	mu      sync.Mutex
	started bool
	stopped bool
	stopRun chan struct{} // closed by Shutdown: Run returns
	runDone chan struct{} // closed when Run has returned

	shutdownMu  sync.Mutex
	isShutDown  bool
	shutdownErr error
}

// NewConsumer returns a consumer named name (the worker's id; "" means
// "<hostname>-<pid>") of queue ("" means DefaultQueue), running jobs with
// mux's handlers. It panics if mux is nil. On a Redis Cluster it uses the
// queue's tagged keys, as NewQueue does.
func NewConsumer(rdb redis.UniversalClient, queue, name string, mux *Mux, o ConsumerOptions) *Consumer {
	if mux == nil {
		panic("jobs: NewConsumer: nil Mux")
	}
	if queue == "" {
		queue = DefaultQueue
	}
	if name == "" {
		host, _ := os.Hostname()
		name = host + "-" + strconv.Itoa(os.Getpid())
	}
	o = o.withDefaults()
	log := o.Logger.With("queue", queue, "consumer", name)
	b := &base{
		rdb: rdb, queue: queue, name: name, keys: keysFor(queue, wire.IsCluster(rdb)), o: o, clock: o.Clock, log: log,
		redis: &outage{log: log, clock: o.Clock},
	}
	held := newLedger(o.Concurrency)
	keeper := newKeeper(b, held)
	com := newCommitter(b, held, keeper)
	rd := newReader(b, held, mux, com)
	rd.keeper = keeper
	return &Consumer{
		name: name, held: held,
		reader:  rd,
		workers: newProcessor(b, held, com),
		com:     com,
		keeper:  keeper,
		stopRun: make(chan struct{}),
		runDone: make(chan struct{}),
	}
}

// Name returns the consumer's name in the group.
func (c *Consumer) Name() string { return c.name }

// Run reads and runs jobs until ctx is done or Shutdown is called, then
// stops reading and returns nil; jobs already running go on, and Shutdown
// waits for them. Entries read but not started are handed back to the
// group at once. Redis errors are logged and retried with backoff; Run
// returns an error only when called twice (ErrRunning), after Shutdown
// (ErrStopped), or when the Redis client was closed (redis.ErrClosed). The
// values of ctx (such as logging bindings) reach the handlers, its
// cancellation does not.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.start(ctx); err != nil {
		return err
	}
	defer close(c.runDone)
	c.reader.start(ctx)
	select {
	case <-ctx.Done():
	case <-c.stopRun:
	case <-c.reader.done:
	}
	// A read in flight ends within Block, unless Redis hangs: then Run
	// leaves it.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.reader.o.Block+stopGrace)
	defer cancel()
	err := c.reader.stop(stopCtx)
	c.workers.stopTaking()
	if unstarted := c.held.takeWaiting(); len(unstarted) > 0 && err == nil {
		_ = within(context.WithoutCancel(ctx), giveBackTimeout, func(ctx context.Context) error {
			c.keeper.giveBack(ctx, unstarted)
			return nil
		})
	}
	return err
}

// Bounds of the waits on Redis when a consumer stops, so that a hung Redis
// cannot hold a stopping worker up.
const (
	// giveBackTimeout bounds handing back unstarted entries when Run ends.
	giveBackTimeout = 2 * time.Second
	// stopGrace is how much longer than its own bound Shutdown (or Run)
	// waits for Redis: Shutdown returns within its context's deadline plus
	// stopGrace, and Run within Block plus stopGrace plus giveBackTimeout
	// of being told to stop.
	stopGrace = time.Second
	// stopWriteTimeout bounds recording the finished jobs' outcomes in a
	// Shutdown whose context has no deadline.
	stopWriteTimeout = 5 * time.Second
)

// start starts the parts that outlive Run: they run until Shutdown.
func (c *Consumer) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stopped:
		return ErrStopped
	case c.started:
		return ErrRunning
	}
	c.started = true
	bg := context.WithoutCancel(ctx)
	c.com.start(bg)
	c.keeper.start(bg)
	c.workers.start(bg)
	return nil
}

// Shutdown stops Run if it still runs, waits until the running jobs finish
// and their outcome is recorded, and releases the consumer's goroutines.
// If ctx ends first, the unfinished jobs are left pending in the group, not
// acknowledged, for another worker to claim after the visibility timeout;
// their handlers' contexts are cancelled and their outcome is not
// recorded. Shutdown then returns an error wrapping ctx's.
//
// Shutdown returns within ctx's deadline plus a second whatever Redis
// does: writes to a Redis that hangs are left (and their jobs, not
// acknowledged, are delivered again), and an error says so. Without a
// deadline it waits for the running jobs as long as they take, and for
// Redis at most 5 seconds more. Calling it again returns the first call's
// result.
func (c *Consumer) Shutdown(ctx context.Context) error {
	c.shutdownMu.Lock()
	defer c.shutdownMu.Unlock()
	if c.isShutDown {
		return c.shutdownErr
	}
	c.isShutDown = true
	c.mu.Lock()
	started := c.started
	c.stopped = true
	c.mu.Unlock()
	close(c.stopRun)
	c.workers.stopTaking()
	if !started {
		return nil
	}
	c.shutdownErr = c.drain(ctx)
	return c.shutdownErr
}

// drain waits for Run and the workers, records what finished, then stops
// the committer and the keeper.
func (c *Consumer) drain(ctx context.Context) error {
	var err error
	if !waitDone(ctx, c.runDone) || !waitDone(ctx, c.workers.done) {
		if n := c.held.runs(); n > 0 { // else only Run's last read was still blocking
			err = fmt.Errorf("jobs: shutdown: %d jobs still running are left pending for another worker: %w", n, context.Cause(ctx))
		}
	}
	// Record what finished; an unfinished job's outcome arrives after the
	// committer closed and is dropped, so its entry stays pending. Whatever
	// Redis does, the writes and the keeper's last call are waited for only
	// until stopDeadline.
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), stopDeadline(ctx))
	defer cancel()
	if ferr := c.com.close(wctx); ferr != nil && err == nil {
		err = fmt.Errorf("jobs: shutdown: outcomes not recorded, their jobs stay pending: %w", ferr)
	}
	c.workers.cancelJobs()
	c.keeper.stop(wctx)
	return err
}

// stopDeadline is when Shutdown stops waiting for Redis: stopGrace after
// ctx's deadline, or after now if ctx has ended; stopWriteTimeout after
// now if ctx has no deadline.
func stopDeadline(ctx context.Context) time.Time {
	now := time.Now()
	d, ok := ctx.Deadline()
	switch {
	case ctx.Err() != nil:
		return now.Add(stopGrace)
	case ok:
		return d.Add(stopGrace)
	}
	return now.Add(stopWriteTimeout)
}
