package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
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

// prefetchPerSlot is how many entries a consumer holds, running or waiting
// to run, per unit of Concurrency: enough that a worker finishing a short
// job finds the next one already read, and one XREADGROUP serves several
// jobs. (On the 2-core test machine, 4 gave about half the throughput of 8
// with four consumers at Concurrency 1; 16 gained nothing clear.)
const prefetchPerSlot = 8

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
	// Now is the time source of timestamps and retry times; nil means
	// time.Now.
	Now func() time.Time
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
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Consumer is the worker side of a queue: it reads jobs in the consumer
// group, runs them with the Mux's handlers, and records the outcome. It is
// safe for concurrent use; Run is called once, and Shutdown after it.
//
// Delivery is at least once: a job is acknowledged only after its outcome
// is written, so a worker that dies mid-job leaves it pending for another.
type Consumer struct {
	rdb      redis.UniversalClient
	queue    string
	name     string
	mux      *Mux
	o        ConsumerOptions
	keys     keys
	log      *slog.Logger
	prefetch int // entries running or waiting at most; twice that counting those being recorded
	com      *committer

	mu      sync.Mutex
	tracked map[string]*delivery // by stream id: delivered here, not yet acknowledged
	waiting []*delivery          // read and not yet started, oldest first
	running int
	// stalled is set when waiting entries were given back because every
	// worker was busy too long; reading waits until a worker frees up.
	stalled   bool
	nextRetry time.Time // earliest retry this consumer scheduled, for the promoter
	started   bool
	stopped   bool

	ready          chan struct{} // poked when waiting grows: a worker may start one
	space          chan struct{} // poked when the reader may read more
	retryNudge     chan struct{} // poked when a retry was scheduled
	stopRun        chan struct{} // closed by Shutdown: Run returns
	stopTaking     chan struct{} // closed when Run returns or Shutdown starts: workers start no new job
	stopTakingOnce sync.Once
	runDone        chan struct{} // closed when Run has returned
	stopKeeper     chan struct{} // closed by Shutdown last: the keeper ends
	jobCtx         context.Context
	cancelJobs     context.CancelFunc
	workers        sync.WaitGroup
	keeper         sync.WaitGroup
	shutdownMu     sync.Mutex
	shutdownErr    error
	isShutDown     bool

	claimCursor string
	redisDown   atomic.Bool
	downSince   atomic.Int64 // Unix ns
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
	c := &Consumer{
		rdb: rdb, queue: queue, name: name, mux: mux, o: o, keys: keysFor(queue),
		log:         o.Logger.With("queue", queue, "consumer", name),
		prefetch:    prefetchPerSlot * o.Concurrency,
		tracked:     make(map[string]*delivery),
		ready:       make(chan struct{}, 1),
		space:       make(chan struct{}, 1),
		retryNudge:  make(chan struct{}, 1),
		stopRun:     make(chan struct{}),
		stopTaking:  make(chan struct{}),
		runDone:     make(chan struct{}),
		stopKeeper:  make(chan struct{}),
		claimCursor: "0-0",
	}
	c.com = newCommitter(c)
	return c
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.stopRun:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := c.readLoop(ctx)
	c.stopTakingOnce.Do(func() { close(c.stopTaking) })
	c.mu.Lock()
	unstarted := c.waiting
	c.waiting = nil
	c.untrackLocked(unstarted)
	c.mu.Unlock()
	if len(unstarted) > 0 && err == nil {
		gctx, gcancel := context.WithTimeout(context.WithoutCancel(ctx), giveBackTimeout)
		defer gcancel()
		c.giveBack(gctx, unstarted)
	}
	return err
}

// giveBackTimeout bounds handing back unstarted entries when Run ends.
const giveBackTimeout = 2 * time.Second

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
	c.jobCtx, c.cancelJobs = context.WithCancel(context.WithoutCancel(ctx))
	c.com.start(c.jobCtx)
	c.keeper.Add(1)
	go c.keep(c.jobCtx)
	for range c.o.Concurrency {
		c.workers.Add(1)
		go c.work()
	}
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
	c.stopTakingOnce.Do(func() { close(c.stopTaking) })
	if !started {
		return nil
	}
	c.shutdownErr = c.drain(ctx)
	return c.shutdownErr
}

// drain waits for Run and the workers, records what finished, then stops
// the background loops.
func (c *Consumer) drain(ctx context.Context) error {
	workersDone := make(chan struct{})
	go func() {
		<-c.runDone // Run hands back what the workers did not start
		c.workers.Wait()
		close(workersDone)
	}()
	var err error
	select {
	case <-workersDone:
	case <-ctx.Done():
		c.mu.Lock()
		n := c.running
		c.mu.Unlock()
		if n > 0 { // else only Run's last read was still blocking
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
	c.cancelJobs()
	close(c.stopKeeper)
	c.keeper.Wait()
	return err
}

// finalFlushTimeout bounds recording finished jobs when Shutdown's context
// has already ended.
const finalFlushTimeout = time.Second

// work runs jobs until Run returns.
func (c *Consumer) work() {
	defer c.workers.Done()
	for {
		d := c.next()
		if d == nil {
			return
		}
		c.process(d)
		c.mu.Lock()
		c.running--
		c.stalled = false
		c.mu.Unlock()
		poke(c.space)
	}
}

// next returns the oldest waiting delivery, marked running, or nil once Run
// has returned.
func (c *Consumer) next() *delivery {
	for {
		select {
		case <-c.stopTaking:
			return nil
		default:
		}
		c.mu.Lock()
		if len(c.waiting) > 0 {
			d := c.waiting[0]
			c.waiting[0] = nil
			c.waiting = c.waiting[1:]
			c.running++
			more := len(c.waiting) > 0
			c.mu.Unlock()
			if more {
				poke(c.ready) // chain the wake-up to the next idle worker
			}
			poke(c.space)
			return d
		}
		c.mu.Unlock()
		select {
		case <-c.ready:
		case <-c.stopTaking:
			return nil
		}
	}
}

// untrackLocked forgets deliveries; c.mu is held.
func (c *Consumer) untrackLocked(ds []*delivery) {
	for _, d := range ds {
		delete(c.tracked, d.streamID)
	}
}

// poke wakes the receiver of ch, a channel of capacity 1, without blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// redisFailed logs a Redis error: a refused command each time, an outage
// once until Redis answers again.
func (c *Consumer) redisFailed(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return // shutting down: not Redis's fault
	}
	if isReplyError(err) {
		c.log.ErrorContext(ctx, "redis refused a command", "op", what, "error", err)
		return
	}
	if c.redisDown.CompareAndSwap(false, true) {
		c.downSince.Store(time.Now().UnixNano())
		c.log.WarnContext(ctx, "redis unavailable; jobs wait until it answers", "op", what, "error", err)
	}
}

// redisOK ends an outage logged by redisFailed.
func (c *Consumer) redisOK(ctx context.Context) {
	if c.redisDown.Load() && c.redisDown.CompareAndSwap(true, false) {
		outage := time.Since(time.Unix(0, c.downSince.Load())).Round(time.Millisecond)
		c.log.InfoContext(ctx, "redis answered again", "outage", outage)
	}
}

// isReplyError reports whether err is an error reply from Redis, as opposed
// to a connection that failed.
func isReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil)
}

func isNoGroup(err error) bool {
	return err != nil && isReplyError(err) && len(err.Error()) >= 7 && err.Error()[:7] == "NOGROUP"
}

// sleepCtx waits d or until ctx is done, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryWait is the wait after the n-th consecutive Redis failure (n >= 1):
// 50ms doubling to 2s.
func retryWait(n int) time.Duration {
	const first, most = 50 * time.Millisecond, 2 * time.Second
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
