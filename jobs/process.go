package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/botfleet/botfleet/logging"
)

// processor runs Concurrency workers that take deliveries from the ledger,
// run their handlers and hand the bookkeeping to the committer: running
// now, then the outcome.
type processor struct {
	*base
	held *ledger
	com  *committer

	jobCtx     context.Context // the handlers'; cancelled by cancelJobs
	cancel     context.CancelFunc
	stopping   chan struct{} // closed by stopTaking: workers start no new job
	stopOnce   sync.Once
	done       chan struct{} // closed when every worker has returned
	processing sync.WaitGroup
}

func newProcessor(b *base, held *ledger, com *committer) *processor {
	return &processor{base: b, held: held, com: com, stopping: make(chan struct{}), done: make(chan struct{})}
}

// start starts the workers; handlers get ctx's values and a cancellation
// of their own (cancelJobs).
func (p *processor) start(ctx context.Context) {
	p.jobCtx, p.cancel = context.WithCancel(ctx)
	for range p.o.Concurrency {
		p.processing.Add(1)
		go p.work()
	}
	go func() {
		p.processing.Wait()
		close(p.done)
	}()
}

// stopTaking tells the workers to start no new job; each returns once its
// running job is done (done is closed when all have).
func (p *processor) stopTaking() {
	p.stopOnce.Do(func() { close(p.stopping) })
}

// cancelJobs cancels the contexts of the handlers still running.
func (p *processor) cancelJobs() {
	if p.cancel != nil {
		p.cancel()
	}
}

// work runs jobs until stopTaking.
func (p *processor) work() {
	defer p.processing.Done()
	for {
		d := p.held.next(p.stopping)
		if d == nil {
			return
		}
		took := p.process(d)
		p.held.ran(took)
	}
}

// process runs one job and queues its bookkeeping: running now, then its
// outcome. The committer writes both, in order, in its next batch. It
// returns how long the handler ran.
func (p *processor) process(d *delivery) time.Duration {
	job := d.job
	ctx := logging.With(p.jobCtx, logging.KeyJobID, job.ID)
	p.onStart(ctx, job)
	d.startedAt = p.clock.Now().UTC()
	p.com.add(op{kind: opRunning, d: d, at: d.startedAt, attempts: job.Attempt})
	p.log.DebugContext(ctx, "job started", "type", job.Type, "attempt", job.Attempt)
	start := p.clock.Now()
	result, err := p.call(ctx, d.handler, job)
	var data []byte
	if err == nil {
		data, err = encodeResult(result)
	}
	took := p.clock.Now().Sub(start)
	p.record(ctx, d, data, err, took)
	p.onFinish(ctx, job, took, err)
	return took
}

// onStart and onFinish call the hooks; a hook's panic is logged, and the
// worker carries on.
func (p *processor) onStart(ctx context.Context, job *Job) {
	if p.o.OnStart != nil {
		defer p.recoverHook(ctx, "OnStart")
		p.o.OnStart(job)
	}
}

func (p *processor) onFinish(ctx context.Context, job *Job, took time.Duration, err error) {
	if p.o.OnFinish != nil {
		defer p.recoverHook(ctx, "OnFinish")
		p.o.OnFinish(job, took, err)
	}
}

func (b *base) recoverHook(ctx context.Context, hook string) {
	if r := recover(); r != nil {
		b.log.ErrorContext(ctx, "consumer hook panicked", "hook", hook, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

// call runs the handler; a panic fails the attempt, with its stack logged.
func (p *processor) call(ctx context.Context, h Handler, job *Job) (result any, err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if e, ok := r.(error); ok {
			err = fmt.Errorf("panic: %w", e)
		} else {
			err = fmt.Errorf("panic: %v", r)
		}
		p.log.ErrorContext(ctx, "job handler panicked", "type", job.Type, "attempt", job.Attempt,
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}()
	return h.Handle(ctx, job)
}

func encodeResult(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	if len(data) > MaxResultSize {
		return nil, fmt.Errorf("result of %d bytes: more than %d", len(data), MaxResultSize)
	}
	return data, nil
}

// record queues the outcome of an attempt: the result, a retry after the
// backoff, or the dead-letter stream once the attempts are used up or the
// error says retrying cannot help.
func (p *processor) record(ctx context.Context, d *delivery, result []byte, err error, took time.Duration) {
	job, now := d.job, p.clock.Now()
	o := op{d: d, at: now, attempts: job.Attempt}
	switch {
	case err == nil:
		p.log.DebugContext(ctx, "job succeeded", "type", job.Type, "attempt", job.Attempt, "took", took)
		o.kind, o.result = opSucceeded, result
	case errors.Is(err, ErrSkipRetry) || job.Attempt >= job.MaxAttempts:
		p.log.ErrorContext(ctx, "job failed; dead-lettered", "type", job.Type, "attempt", job.Attempt,
			"max_attempts", job.MaxAttempts, "took", took, "error", err)
		o.kind, o.err, o.cause = opDead, truncate(err.Error(), maxErrorLen), err
	default:
		wait := p.backoff(job.Attempt)
		p.log.WarnContext(ctx, "job failed; will retry", "type", job.Type, "attempt", job.Attempt,
			"max_attempts", job.MaxAttempts, "took", took, "retry_in", wait, "error", err)
		o.kind, o.err, o.due = opRetry, truncate(err.Error(), maxErrorLen), now.Add(wait)
	}
	p.com.add(o)
}

// backoff is the wait after attempt failed: Backoff, doubled per further
// attempt, capped at MaxBackoff or Backoff if longer.
func (p *processor) backoff(attempt int) time.Duration {
	limit := max(MaxBackoff, p.o.Backoff)
	d := p.o.Backoff
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
