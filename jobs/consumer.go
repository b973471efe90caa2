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
	// StreamMaxLen caps the stream when retries are added back to it
	// (MAXLEN ~). Default 100000, as QueueOptions.
	StreamMaxLen int64
	// DeadMaxLen caps the dead-letter stream (MAXLEN ~). Default 10000.
	DeadMaxLen int64
	// OnStart is called before a handler runs a job, and OnFinish after,
	// with the handler's error (nil on success). They run on the job's
	// goroutine and must be safe for concurrent use when Concurrency > 1.
	// Entries dead-lettered without running (malformed, unknown type,
	// delivered too often) reach neither.
	OnStart  func(job *Job)
	OnFinish func(job *Job, took time.Duration, err error)
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
	if o.StreamMaxLen <= 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	if o.DeadMaxLen <= 0 {
		o.DeadMaxLen = DefaultDeadMaxLen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
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
// mux's handlers. It panics if mux is nil.
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
		rdb: rdb, queue: queue, name: name, keys: keysFor(queue), o: o, clock: o.Clock, log: log,
		redis: &outage{log: log, clock: o.Clock},
	}
	held := newLedger(o.Concurrency)
	keeper := newKeeper(b, held)
	com := newCommitter(b, held, keeper)
	return &Consumer{
		name: name, held: held,
		reader:  newReader(b, held, mux, com),
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
	err := c.reader.stop(context.Background())
	c.workers.stopTaking()
	if unstarted := c.held.takeWaiting(); len(unstarted) > 0 && err == nil {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), giveBackTimeout)
		defer cancel()
		c.keeper.giveBack(gctx, unstarted)
	}
	return err
}

// giveBackTimeout bounds handing back unstarted entries when Run ends.
const giveBackTimeout = 2 * time.Second

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
// recorded. Shutdown then returns an error wrapping ctx's. Calling it again
// returns the first call's result.
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
	// committer closed and is dropped, so its entry stays pending.
	flushCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		flushCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
		defer cancel()
	}
	if ferr := c.com.close(flushCtx); ferr != nil && err == nil {
		err = fmt.Errorf("jobs: shutdown: outcomes not recorded, their jobs stay pending: %w", ferr)
	}
	c.workers.cancelJobs()
	c.keeper.stop(context.Background())
	return err
}

// finalFlushTimeout bounds recording finished jobs when Shutdown's context
// has already ended.
const finalFlushTimeout = time.Second
