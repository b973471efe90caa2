package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/botfleet/botfleet/logging"
)

// process runs one job and queues its bookkeeping: running now, then its
// outcome. The committer writes both, in order, in its next batch.
func (c *Consumer) process(d *delivery) {
	job := d.job
	ctx := logging.With(c.jobCtx, logging.KeyJobID, job.ID)
	c.onStart(ctx, job)
	c.com.add(op{kind: opRunning, d: d, at: c.o.Now(), attempts: job.Attempt})
	c.log.DebugContext(ctx, "job started", "type", job.Type, "attempt", job.Attempt)
	start := time.Now()
	result, err := c.call(ctx, d.handler, job)
	var data []byte
	if err == nil {
		data, err = encodeResult(result)
	}
	took := time.Since(start)
	c.record(ctx, d, data, err, took)
	c.onFinish(ctx, job, took, err)
}

// onStart and onFinish call the hooks; a hook's panic is logged, and the
// worker carries on.
func (c *Consumer) onStart(ctx context.Context, job *Job) {
	if c.o.OnStart != nil {
		defer c.recoverHook(ctx, "OnStart")
		c.o.OnStart(job)
	}
}

func (c *Consumer) onFinish(ctx context.Context, job *Job, took time.Duration, err error) {
	if c.o.OnFinish != nil {
		defer c.recoverHook(ctx, "OnFinish")
		c.o.OnFinish(job, took, err)
	}
}

func (c *Consumer) recoverHook(ctx context.Context, hook string) {
	if r := recover(); r != nil {
		c.log.ErrorContext(ctx, "consumer hook panicked", "hook", hook, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
}

// call runs the handler; a panic fails the attempt, with its stack logged.
func (c *Consumer) call(ctx context.Context, h Handler, job *Job) (result any, err error) {
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
		c.log.ErrorContext(ctx, "job handler panicked", "type", job.Type, "attempt", job.Attempt,
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
func (c *Consumer) record(ctx context.Context, d *delivery, result []byte, err error, took time.Duration) {
	job, now := d.job, c.o.Now()
	o := op{d: d, at: now, attempts: job.Attempt}
	switch {
	case err == nil:
		c.log.DebugContext(ctx, "job succeeded", "type", job.Type, "attempt", job.Attempt, "took", took)
		o.kind, o.result = opSucceeded, result
	case errors.Is(err, ErrSkipRetry) || job.Attempt >= job.MaxAttempts:
		c.log.ErrorContext(ctx, "job failed; dead-lettered", "type", job.Type, "attempt", job.Attempt,
			"max_attempts", job.MaxAttempts, "took", took, "error", err)
		o.kind, o.err = opDead, truncate(err.Error(), maxErrorLen)
	default:
		wait := c.backoff(job.Attempt)
		c.log.WarnContext(ctx, "job failed; will retry", "type", job.Type, "attempt", job.Attempt,
			"max_attempts", job.MaxAttempts, "took", took, "retry_in", wait, "error", err)
		o.kind, o.err, o.due = opRetry, truncate(err.Error(), maxErrorLen), now.Add(wait)
	}
	c.com.add(o)
}

// backoff is the wait after attempt failed: Backoff, doubled per further
// attempt, capped at MaxBackoff or Backoff if longer.
func (c *Consumer) backoff(attempt int) time.Duration {
	limit := max(MaxBackoff, c.o.Backoff)
	d := c.o.Backoff
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
