package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/clock"
	"github.com/botfleet/botfleet/internal/wire"
)

// ErrStopped is returned by Start and Stop on a Beater already stopped, and
// by Check after Stop.
var ErrStopped = errors.New("heartbeat: stopped")

// Defaults of the Options, and the limits New enforces.
const (
	DefaultInterval     = 30 * time.Second
	DefaultStreamMaxLen = 10000
	// DefaultMinGap is the default of Options.MinGap.
	DefaultMinGap = time.Second
	// MinInterval is the shortest Interval New accepts: beat times are
	// written to the millisecond, and faster beats only load Redis.
	MinInterval = 100 * time.Millisecond
	// maxBeatTimeout bounds one beat's round trip when the interval is long.
	maxBeatTimeout = 5 * time.Second
	// firstRetry is the first retry delay after a failed beat (or the
	// interval, if shorter); each further failure doubles it, up to the
	// interval.
	firstRetry = time.Second
)

// Options configure a Beater. The zero value of every field but Report is
// its default.
type Options struct {
	// Interval between beats (HEARTBEAT_INTERVAL). Default 30s; at least
	// MinInterval.
	Interval time.Duration
	// TTL of the worker's hash (HEARTBEAT_TTL): how long it outlives the
	// last beat. Default 3 x Interval; it must be longer than Interval.
	TTL time.Duration
	// StreamMaxLen is the approximate length the stream is trimmed to
	// (HEARTBEAT_STREAM_MAXLEN). Default 10000.
	StreamMaxLen int64
	// Report returns the worker's current status; the Beater fills in
	// Timestamp and Interval. Required. It is called from the Beater's
	// goroutine and must be safe for concurrent use with the worker.
	// WorkerID must stay the same for the Beater's life.
	Report func() Status
	// MinGap is the shortest time between a beat and one that TriggerSoon
	// asks for: busy/idle flips coalesce into at most one extra beat per
	// MinGap, whatever the job rate, and the job counters ride on it.
	// Trigger (lifecycle changes) and the interval's beats do not wait for
	// it. Default 1s (DefaultMinGap).
	MinGap time.Duration
	// StateIndex makes every beat also keep the derived keys StatesKey and
	// DeadlineKey (docs/wire-format.md, "Derived keys"), with which a
	// reader counts and pages a fleet of many thousand workers without
	// reading every hash. Default false: a beat writes the three keys of
	// the wire format only. The worker package turns it on.
	StateIndex bool
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// Logger receives the outage warning and recovery line; nil means
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns o with defaults filled in, or an error naming the
// first field that is wrong.
func (o Options) withDefaults() (Options, error) {
	if o.Report == nil {
		return o, errors.New("heartbeat: Options.Report is required")
	}
	switch {
	case o.Interval == 0:
		o.Interval = DefaultInterval
	case o.Interval < MinInterval:
		return o, fmt.Errorf("heartbeat: Options.Interval %v: want at least %v", o.Interval, MinInterval)
	}
	switch {
	case o.TTL == 0:
		o.TTL = 3 * o.Interval
	case o.TTL <= o.Interval:
		return o, fmt.Errorf("heartbeat: Options.TTL %v: want longer than Options.Interval (%v)", o.TTL, o.Interval)
	}
	switch {
	case o.StreamMaxLen == 0:
		o.StreamMaxLen = DefaultStreamMaxLen
	case o.StreamMaxLen < 0:
		return o, fmt.Errorf("heartbeat: Options.StreamMaxLen %d: want a positive length", o.StreamMaxLen)
	}
	switch {
	case o.MinGap == 0:
		o.MinGap = DefaultMinGap
	case o.MinGap < 0:
		return o, fmt.Errorf("heartbeat: Options.MinGap %v: want a positive duration", o.MinGap)
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// A Beater writes a worker's heartbeat to Redis every interval, at once
// when Trigger reports a lifecycle change, and at most once per MinGap more
// when TriggerSoon reports a busy/idle flip. Its methods are safe for
// concurrent use.
type Beater struct {
	rdb     redis.UniversalClient
	o       Options
	log     *slog.Logger
	timeout time.Duration // bound of one beat's round trip
	trigger chan struct{} // capacity 1: triggers coalesce
	soon    chan struct{} // capacity 1: TriggerSoon's, coalesced likewise

	failures atomic.Uint64

	mu          sync.Mutex
	started     bool
	stopped     bool
	cancel      context.CancelFunc // stops the loop
	done        chan struct{}      // closed when the loop has returned
	attempted   bool
	lastErr     error     // of the last attempt
	lastSuccess time.Time // timestamp of the last beat written

	// Owned by the loop goroutine.
	consecutive int       // failed attempts since the last success
	outageStart time.Time // first failed attempt of the current outage
	lastAttempt time.Time // when the last beat was attempted, by the Clock
}

// New returns a Beater writing through rdb, which must reach a single Redis
// server (not a Cluster: one beat's keys span hash slots). It returns an
// error naming the option that is wrong.
//
// A beat is bounded by a timeout of min(Interval, 5s) through its context.
// go-redis applies a context's deadline to socket reads and writes only
// with redis.Options.ContextTimeoutEnabled; without it, a slow Redis holds
// a beat for the client's ReadTimeout (3s by default) per try.
func New(rdb redis.UniversalClient, o Options) (*Beater, error) {
	if rdb == nil {
		return nil, errors.New("heartbeat: nil Redis client")
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Beater{
		rdb:     rdb,
		o:       o,
		log:     o.Logger.With("logger", "heartbeat"),
		timeout: min(o.Interval, maxBeatTimeout),
		trigger: make(chan struct{}, 1),
		soon:    make(chan struct{}, 1),
	}, nil
}

// Start beats once, then every Interval in a goroutine of its own, until
// Stop is called or ctx is cancelled (cancelling ctx stops the beats but
// leaves the hash to expire by its TTL; Stop deregisters). It returns once
// the first beat is done. A failed first beat is not an error: the worker
// runs on and the Beater retries. Start returns an error only when called
// twice, after Stop, or when ctx ends before the first beat does.
func (b *Beater) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return ErrStopped
	}
	if b.started {
		b.mu.Unlock()
		return errors.New("heartbeat: Start called twice")
	}
	b.started = true
	loopCtx, cancel := context.WithCancel(ctx)
	b.cancel, b.done = cancel, make(chan struct{})
	first := make(chan struct{})
	go b.run(loopCtx, first)
	b.mu.Unlock()

	select {
	case <-first:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Trigger asks for a beat now, for a lifecycle change (STARTING,
// STOPPING, STOPPED). Triggers that arrive while a beat is being written
// coalesce into one more beat; during an outage they wait for the next
// retry, which reports the latest state.
func (b *Beater) Trigger() {
	select {
	case b.trigger <- struct{}{}:
	default:
	}
}

// TriggerSoon asks for a beat for a change that may come many times a
// second, such as a busy/idle flip: at once if the last beat is at least
// MinGap old, else when it is. All the calls until then make that one
// beat, which reports the state and counters of its own moment; so a
// worker writes at most one beat per MinGap beyond its interval's, and a
// flip that is undone within MinGap may never be seen.
func (b *Beater) TriggerSoon() {
	select {
	case b.soon <- struct{}{}:
	default:
	}
}

// run is the loop: the only goroutine that beats, so two beats are never in
// flight at once. It asks the Clock for one interval timer per beat, and
// for one more only when a TriggerSoon must wait for MinGap.
func (b *Beater) run(ctx context.Context, first chan<- struct{}) {
	defer close(b.done)
	wait := b.attempt(ctx)
	close(first)
	for {
		if !b.wait(ctx, wait) {
			return
		}
		wait = b.attempt(ctx)
	}
}

// wait returns when the next beat is due: after wait, on a Trigger, or
// MinGap after the last beat on a TriggerSoon. It returns false when ctx
// ends.
func (b *Beater) wait(ctx context.Context, wait time.Duration) bool {
	tick := b.o.Clock.After(wait)
	var gap <-chan time.Time // armed by a TriggerSoon that waits for MinGap
	for {
		trigger, soon := b.trigger, b.soon
		if b.consecutive > 0 {
			trigger, soon = nil, nil // back off, whatever the worker does
		}
		if gap != nil {
			soon = nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick:
		case <-trigger:
		case <-gap:
		case <-soon:
			d := b.lastAttempt.Add(b.o.MinGap).Sub(b.o.Clock.Now())
			if d > 0 {
				gap = b.o.Clock.After(d)
				continue
			}
		}
		return ctx.Err() == nil
	}
}

// attempt beats once, records the outcome and returns how long to wait
// before the next beat.
func (b *Beater) attempt(ctx context.Context) time.Duration {
	// A pending trigger is served by this beat: it reports the latest state.
	select {
	case <-b.trigger:
	default:
	}
	select {
	case <-b.soon:
	default:
	}
	b.lastAttempt = b.o.Clock.Now()
	ts, err := b.beat(ctx)
	if err != nil && ctx.Err() != nil {
		return 0 // stopping: an interrupted beat is not a failure
	}
	now := b.o.Clock.Now()
	b.mu.Lock()
	b.attempted, b.lastErr = true, err
	if err == nil {
		b.lastSuccess = ts
	}
	b.mu.Unlock()

	if err == nil {
		if b.consecutive > 0 {
			b.log.Info("heartbeat recovered", "outage", now.Sub(b.outageStart), "failed_attempts", b.consecutive)
			b.consecutive = 0
		}
		return b.o.Interval
	}
	n := b.failures.Add(1)
	b.consecutive++
	wait := b.retryDelay(b.consecutive)
	if b.consecutive == 1 {
		b.outageStart = now
		b.log.Warn("heartbeat failed; retrying with backoff", "error", err, "retry_in", wait)
	} else {
		b.log.Debug("heartbeat retry failed", "error", err, "failed_attempts", b.consecutive, "failures_total", n, "retry_in", wait)
	}
	return wait
}

// retryDelay returns the wait after the n-th consecutive failure:
// exponential from firstRetry, capped at the interval, with jitter (between
// half and all of it) so a restarted Redis is not met by the whole fleet at
// once.
func (b *Beater) retryDelay(n int) time.Duration {
	d := min(firstRetry, b.o.Interval)
	for i := 1; i < n && d < b.o.Interval; i++ {
		d *= 2
	}
	d = min(d, b.o.Interval)
	return d/2 + rand.N(d/2+1)
}

// status returns the current status, stamped.
func (b *Beater) status() (Status, error) {
	s := b.o.Report()
	if s.WorkerID == "" {
		return s, errors.New("heartbeat: Report returned a Status without WorkerID")
	}
	s.Timestamp = b.o.Clock.Now()
	s.Interval = b.o.Interval
	return s, nil
}

// beat writes one heartbeat in a single round trip (Write) and returns its
// timestamp. Deleting the hash before writing it drops fields a previous
// beat wrote and this one does not; EXPIRE in the same transaction (or
// script, on a cluster) means the hash never exists without a TTL.
func (b *Beater) beat(ctx context.Context) (time.Time, error) {
	s, err := b.status()
	if err != nil {
		return time.Time{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	if err := Write(ctx, b.rdb, s, b.o); err != nil {
		return time.Time{}, err
	}
	return s.Timestamp, nil
}

func xaddArgs(maxLen int64, args []any) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: StreamKey, MaxLen: maxLen, Approx: true, ID: "*", Values: args}
}

// unixScore is the index score of t: Unix seconds, to the millisecond.
func unixScore(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }

// Stop ends the loop, then, in one round trip, appends a final entry with
// state STOPPED to the stream, deletes the worker's hash and removes the
// worker from the index. If Redis cannot be reached, Stop returns the error
// and the hash expires by its TTL. Stop returns ErrStopped when called
// again.
func (b *Beater) Stop(ctx context.Context) error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return ErrStopped
	}
	b.stopped = true
	cancel, done := b.cancel, b.done
	b.mu.Unlock()

	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("heartbeat: stop: waiting for the beat in flight: %w", ctx.Err())
		}
	}
	return b.deregister(ctx)
}

func (b *Beater) deregister(ctx context.Context) error {
	s, err := b.status()
	if err != nil {
		return err
	}
	s.State = StateStopped.String()
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	key := KeyPrefix + s.WorkerID
	_, err = wire.TxPipelined(b.rdb)(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, xaddArgs(b.o.StreamMaxLen, s.appendArgs(make([]any, 0, 2*numFields))))
		p.Del(ctx, key)
		p.ZRem(ctx, IndexKey, s.WorkerID)
		if b.o.StateIndex {
			unindex(ctx, p, s.WorkerID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat: stop: deregister %s (its TTL will expire it): %w", key, err)
	}
	return nil
}

// Interval returns the interval between beats, its default filled in.
func (b *Beater) Interval() time.Duration { return b.o.Interval }

// Failures returns the number of failed beat attempts so far.
func (b *Beater) Failures() uint64 { return b.failures.Load() }

// LastSuccess returns the timestamp of the last beat written, or the zero
// time if none was.
func (b *Beater) LastSuccess() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastSuccess
}

// Check reports whether the heartbeat is healthy, for /health's checks: nil
// when the last attempt succeeded and the last beat written is younger than
// 2 x Interval; otherwise an error saying why.
func (b *Beater) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	stopped, attempted, lastErr, last := b.stopped, b.attempted, b.lastErr, b.lastSuccess
	b.mu.Unlock()
	switch {
	case stopped:
		return ErrStopped
	case !attempted:
		return errors.New("heartbeat: no beat attempted yet")
	case lastErr != nil && last.IsZero():
		return fmt.Errorf("heartbeat: no beat written yet (%d failed attempts): %w", b.Failures(), lastErr)
	case lastErr != nil:
		return fmt.Errorf("heartbeat: last beat failed (%d failed attempts so far; last written %v ago): %w",
			b.Failures(), b.o.Clock.Now().Sub(last).Round(time.Millisecond), lastErr)
	}
	if age := b.o.Clock.Now().Sub(last); age >= 2*b.o.Interval {
		return fmt.Errorf("heartbeat: last beat written %v ago, more than 2 x the %v interval", age.Round(time.Millisecond), b.o.Interval)
	}
	return nil
}
