package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/clock"
)

// opKind is what an op records.
type opKind uint8

const (
	opRunning   opKind = iota // a handler started the job
	opSucceeded               // done: store the result, acknowledge
	opRetry                   // failed: schedule the next attempt, acknowledge
	opDead                    // failed for good: dead-letter, acknowledge
)

// op is one piece of bookkeeping for the committer.
type op struct {
	kind     opKind
	d        *delivery
	at       time.Time // when it happened, by the Clock
	attempts int       // the job's attempts so far; -1 leaves the field alone
	result   []byte    // opSucceeded: JSON
	err      string    // opRetry, opDead
	cause    error     // opDead: for OnDead
	due      time.Time // opRetry: when the next attempt may run
}

// maxOpsPerFlush bounds one MULTI/EXEC.
const maxOpsPerFlush = 512

// committer writes the consumer's bookkeeping in batches: whatever the
// workers and the reader queued while the last batch was in flight goes
// out in one MULTI/EXEC, so a short job costs a fraction of a round trip.
// Ops are written in the order they were queued, so a job's running status
// never lands after its outcome. A batch that fails on a connection error
// is retried with backoff; its entries stay in the ledger, so their leases
// are renewed meanwhile. Once a batch is written, its finished entries
// leave the ledger and the keeper learns of its retries.
type committer struct {
	*base
	held   *ledger
	keeper *keeper

	mu     sync.Mutex
	ops    []op
	closed bool

	wake   chan struct{}
	done   chan struct{} // closed when the loop has returned
	cancel context.CancelFunc
	err    error // what was left unrecorded when the loop gave up; set before done is closed
}

func newCommitter(b *base, held *ledger, keeper *keeper) *committer {
	return &committer{base: b, held: held, keeper: keeper, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// start starts the loop.
func (m *committer) start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	go m.loop(ctx)
}

// add queues o, and reports false if the committer is closed: the outcome
// of a job that outlived Shutdown is dropped, leaving its entry pending.
func (m *committer) add(o op) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.ops = append(m.ops, o)
	m.mu.Unlock()
	poke(m.wake)
	return true
}

// close stops taking ops and waits until the queued ones are written, or
// ctx ends; then it stops the loop. A write in flight when ctx ends is
// left to finish on its own, if Redis ever answers it.
func (m *committer) close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	poke(m.wake)
	defer m.cancel()
	if waitDone(ctx, m.done) {
		return m.err
	}
	m.cancel()
	select {
	case <-m.done: // it was waiting, not writing
		return m.err
	default:
		return fmt.Errorf("outcomes still being written: %w", context.Cause(ctx))
	}
}

func (m *committer) loop(ctx context.Context) {
	defer close(m.done)
	var (
		batch    []op
		failures int
	)
	for {
		m.mu.Lock()
		batch = append(batch, m.ops...)
		clear(m.ops)
		m.ops = m.ops[:0]
		closed := m.closed
		m.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-m.wake:
			case <-ctx.Done():
				m.mu.Lock()
				if n := len(m.ops); n > 0 { // queued just before close
					m.err = fmt.Errorf("%d outcomes not recorded: %w", n, context.Cause(ctx))
				}
				m.mu.Unlock()
				return
			}
			continue
		}
		rest, err := m.flushAll(ctx, batch)
		if err == nil {
			failures = 0
			clear(batch)
			batch = batch[:0]
			continue
		}
		batch = rest
		failures++
		if !clock.Sleep(ctx, m.clock, retryWait(failures)) {
			m.err = fmt.Errorf("%d outcomes not recorded: %w", len(batch), err)
			return
		}
	}
}

// flushAll writes ops in chunks and returns those left after a connection
// error. A chunk Redis refuses (an error reply) is logged and dropped:
// MULTI/EXEC ran its other commands, and a job not acknowledged is
// delivered again.
func (m *committer) flushAll(ctx context.Context, ops []op) ([]op, error) {
	for len(ops) > 0 {
		chunk := ops[:min(len(ops), maxOpsPerFlush)]
		if err := m.flush(ctx, chunk); err != nil {
			m.redis.failed(ctx, "record outcomes", err)
			if !isReplyError(err) {
				return ops, err
			}
		} else {
			m.redis.ok(ctx)
			m.reportDead(ctx, chunk)
		}
		m.settled(chunk)
		ops = ops[len(chunk):]
	}
	return nil, nil
}

// flush writes ops in one MULTI/EXEC: hashes, retries and dead letters
// first, then one XACK and XDEL for every finished entry (a processed entry
// leaves the stream, so the stream's length is the backlog).
func (m *committer) flush(ctx context.Context, ops []op) error {
	finished := make(map[string]bool, len(ops))
	for _, o := range ops {
		if o.kind != opRunning {
			finished[o.d.streamID] = true
		}
	}
	var acks []string
	p := m.rdb.TxPipeline()
	for _, o := range ops {
		if o.kind == opRunning && finished[o.d.streamID] {
			continue // its outcome, in this batch, says more
		}
		m.queueOp(ctx, p, o)
		if o.kind != opRunning {
			acks = append(acks, o.d.streamID)
		}
	}
	if len(acks) > 0 {
		p.XAck(ctx, m.keys.stream, Group, acks...)
		p.XDel(ctx, m.keys.stream, acks...)
	}
	_, err := p.Exec(ctx)
	return err
}

// queueOp adds the commands of one op to p.
func (m *committer) queueOp(ctx context.Context, p redis.Pipeliner, o op) {
	switch o.kind {
	case opRunning:
		m.writeHash(ctx, p, o, StatusRunning)
	case opSucceeded:
		m.writeHash(ctx, p, o, StatusSucceeded, fieldResult, o.result)
		if o.attempts > 1 {
			p.HDel(ctx, jobKey(o.d.job.ID), fieldError) // from an earlier attempt
		}
	case opRetry:
		member, _ := json.Marshal(entryPairs(o.d, o.d.job.Attempt+1))
		p.ZAdd(ctx, m.keys.retry, redis.Z{Score: float64(o.due.UnixMilli()), Member: member})
		m.writeHash(ctx, p, o, StatusRetrying, fieldError, o.err)
	case opDead:
		fields := entryPairs(o.d, 0)
		fields = append(fields, fieldError, o.err, fieldWorker, m.name,
			fieldFailedAt, formatUnix(o.at), fieldStreamID, o.d.streamID)
		p.XAdd(ctx, &redis.XAddArgs{Stream: m.keys.dead, MaxLen: m.o.DeadMaxLen, Approx: true, Values: fields})
		if o.d.jobID() != "" {
			m.writeHash(ctx, p, o, StatusFailed, fieldError, o.err)
		}
	}
}

// writeHash sets the job hash's status and the fields that say who ran it,
// plus extra field/value pairs, and renews its TTL. It writes id, type and
// queue too, so a job enqueued by a producer that wrote no hash still has
// one that answers Get.
func (m *committer) writeHash(ctx context.Context, p redis.Pipeliner, o op, status string, extra ...any) {
	id := o.d.jobID()
	args := make([]any, 0, 18+len(extra))
	args = append(args, fieldID, id, fieldQueue, m.queue, fieldStatus, status,
		fieldWorker, m.name, fieldUpdatedAt, formatUnix(o.at))
	if j := o.d.job; j != nil {
		args = append(args, fieldType, j.Type, fieldMaxAttempts, j.MaxAttempts)
	}
	if o.attempts >= 0 {
		args = append(args, fieldAttempts, o.attempts)
	}
	args = append(args, extra...)
	key := jobKey(id)
	p.HSet(ctx, key, args...)
	p.Expire(ctx, key, m.o.ResultTTL)
}

// reportDead calls OnDead for the jobs of ops whose dead letter is written.
func (m *committer) reportDead(ctx context.Context, ops []op) {
	if m.o.OnDead == nil {
		return
	}
	for _, o := range ops {
		if o.kind == opDead {
			m.onDead(ctx, o)
		}
	}
}

func (m *committer) onDead(ctx context.Context, o op) {
	defer m.recoverHook(ctx, "OnDead")
	m.o.OnDead(o.d.deadJob(m.queue), o.cause)
}

// settled strikes the entries whose outcome is written out of the ledger,
// and tells the keeper about new retries.
func (m *committer) settled(ops []op) {
	var (
		finished []string
		due      time.Time
	)
	for _, o := range ops {
		if o.kind == opRunning {
			continue
		}
		finished = append(finished, o.d.streamID)
		if o.kind == opRetry && (due.IsZero() || o.due.Before(due)) {
			due = o.due
		}
	}
	m.held.release(finished)
	if !due.IsZero() {
		m.keeper.retryAt(due)
	}
}

// entryPairs returns d's entry as field/value pairs for a retry (attempt is
// the next attempt's number) or a dead letter (attempt 0: the last one's):
// the job's fields in wire order, then whatever other fields the producer
// wrote, sorted. A malformed entry is copied as it was.
func entryPairs(d *delivery, attempt int) []string {
	out := make([]string, 0, 2*len(d.values)+8)
	skip := map[string]bool{fieldError: true, fieldWorker: true, fieldFailedAt: true, fieldStreamID: true}
	if j := d.job; j != nil {
		if attempt == 0 {
			attempt = j.Attempt
		}
		out = append(out, fieldID, j.ID, fieldType, j.Type, fieldPayload, string(j.Payload),
			fieldAttempt, strconv.Itoa(attempt), fieldMaxAttempts, strconv.Itoa(j.MaxAttempts))
		if v, ok := d.values[fieldEnqueuedAt].(string); ok {
			out = append(out, fieldEnqueuedAt, v)
		}
		for _, f := range []string{fieldID, fieldType, fieldPayload, fieldAttempt, fieldMaxAttempts, fieldEnqueuedAt} {
			skip[f] = true
		}
	}
	var rest []string
	for k := range d.values {
		if !skip[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		v, ok := d.values[k].(string)
		if !ok {
			v = fmt.Sprint(d.values[k])
		}
		out = append(out, k, v)
	}
	return out
}
