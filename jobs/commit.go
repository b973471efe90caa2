package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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

// maxOpsPerFlush bounds the ops of one outcomeScript.
const maxOpsPerFlush = 512

// committer writes the consumer's bookkeeping in batches: whatever the
// workers and the reader queued while the last batch was in flight goes
// out in one outcomeScript, so a short job costs a fraction of a round trip.
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
// error. A chunk in which Redis refused a write for good (an error reply
// inside outcomeScript, such as WRONGTYPE on a key clobbered by hand) is
// logged and dropped: the script made its other writes and every
// acknowledgement. A refusal of the whole script that only says "not now"
// (LOADING after a restart, BUSY, MASTERDOWN, TRYAGAIN, READONLY during a
// failover, OOM)
// is kept and retried like a lost connection, or finished jobs would run
// again.
func (m *committer) flushAll(ctx context.Context, ops []op) ([]op, error) {
	for len(ops) > 0 {
		chunk := ops[:min(len(ops), maxOpsPerFlush)]
		if err := m.flush(ctx, chunk); err != nil {
			m.redis.failed(ctx, "record outcomes", err)
			if keepForRetry(err) {
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

// keepForRetry reports whether a batch whose write failed with err is kept
// and written again: after a lost connection or a "not now" refusal of
// the whole write, yes; after writes refused inside outcomeScript
// (refusedWrites), never, whatever the refusal says, since the script made
// the batch's other writes (a second run would add its dead letters and
// history entries twice).
func keepForRetry(err error) bool {
	var partial refusedWrites
	if errors.As(err, &partial) {
		return false
	}
	return !isReplyError(err) || retryableReply(err)
}

// retryableReply reports whether an error reply means Redis could not run
// the transaction now, rather than that it refused its commands.
func retryableReply(err error) bool {
	msg := err.Error()
	for _, p := range []string{"EXECABORT", "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "READONLY", "CLUSTERDOWN", "OOM"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, ": "+p+" ") {
			return true
		}
	}
	return false
}

// flush writes ops in one outcomeScript: hashes, index moves, histories,
// retries and dead letters, then one XACK and XDEL for every finished
// entry (a processed entry leaves the stream, so the stream's length is
// the backlog). One command for the batch, so a short job costs Redis and
// the worker a fraction of a command.
func (m *committer) flush(ctx context.Context, ops []op) error {
	finished := make(map[string]bool, len(ops))
	for _, o := range ops {
		if o.kind != opRunning {
			finished[o.d.streamID] = true
		}
	}
	keys := make([]string, 0, 8+2*len(ops))
	keys = append(keys, m.keys.stream, m.keys.retry, m.keys.dead)
	for _, st := range indexStatuses {
		keys = append(keys, m.keys.index(st))
	}
	args := make([]any, 7, 7+24*len(ops))
	n := 0
	for _, o := range ops {
		if o.kind == opRunning && finished[o.d.streamID] {
			continue // its outcome, in this batch, says more
		}
		n++
		if id := o.d.jobID(); id != "" {
			keys = append(keys, m.keys.jobKey(id), m.keys.attemptsKey(id))
		} else {
			keys = append(keys, m.keys.stream, m.keys.stream) // unused
		}
		args = m.appendOp(args, o)
	}
	cutoff := m.clock.Now().Add(-m.o.ResultTTL).UnixMilli()
	args[0], args[1], args[2], args[3], args[4], args[5], args[6] =
		Group, m.o.ResultTTL.Milliseconds(), m.o.DeadMaxLen, cutoff, m.o.IndexMaxLen, n, maxAttemptHistory
	refused, err := outcomeScript.Run(ctx, m.rdb, keys, args...).StringSlice()
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return refusedWrites(refused)
	}
	return nil
}

// indexStatuses are the statuses with an index, in outcomeScript's order
// of their keys: the three a job leaves on its own first.
var indexStatuses = []string{StatusQueued, StatusRunning, StatusRetrying, StatusSucceeded, StatusFailed}

// refusedWrites are the error replies outcomeScript met: the batch's other
// writes, and its acknowledgements, were made.
type refusedWrites []string

func (r refusedWrites) Error() string {
	return fmt.Sprintf("%d writes refused, the first: %s", len(r), r[0])
}

// RedisError marks refusedWrites as Redis's answer (redis.Error), not an
// outage.
func (refusedWrites) RedisError() {}

// appendOp appends o's record of outcomeScript's ARGV to args.
func (m *committer) appendOp(args []any, o op) []any {
	id := o.d.jobID()
	kind, status := "r", StatusRunning
	var hist, rscore, rmember, hdel any = "", "", "", "0"
	switch o.kind {
	case opSucceeded:
		kind, status = "s", StatusSucceeded
		if o.attempts > 1 {
			hdel = "1" // the error of an earlier attempt
		}
	case opRetry:
		kind, status = "t", StatusRetrying
		member, _ := json.Marshal(entryPairs(o.d, o.d.job.Attempt+1))
		rscore, rmember = o.due.UnixMilli(), member
	case opDead:
		kind, status = "d", StatusFailed
	}
	to := 0
	if id != "" {
		to = slices.Index(indexStatuses, status) + 1
		if o.kind != opRunning {
			hist = m.attempt(o)
		}
	}
	args = append(args, kind, o.d.streamID, id, o.at.UnixMilli(), to, hist, hdel, rscore, rmember)
	if o.kind == opDead {
		fields := entryPairs(o.d, 0)
		fields = append(fields, fieldError, o.err, fieldWorker, m.name,
			fieldFailedAt, formatUnix(o.at), fieldStreamID, o.d.streamID)
		args = append(args, len(fields))
		for _, f := range fields {
			args = append(args, f)
		}
	} else {
		args = append(args, 0)
	}
	if id == "" {
		return append(args, 0)
	}
	return m.appendHash(args, o, status)
}

// Attempt is one finished run of a job, from its attempt history.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	Worker     string    `json:"worker"`
	StartedAt  time.Time `json:"started_at,omitzero"` // zero when it never started (refused)
	FinishedAt time.Time `json:"finished_at"`
	Outcome    string    `json:"outcome"`         // StatusSucceeded, StatusRetrying, StatusFailed; "retried" marks an operator's retry
	Error      string    `json:"error,omitempty"` // the attempt's error
}

// maxAttemptHistory bounds a job's attempt history.
const maxAttemptHistory = 50

// attempt is the history entry of the attempt an outcome ends, JSON.
func (m *committer) attempt(o op) []byte {
	a := Attempt{Worker: m.name, StartedAt: o.d.startedAt, FinishedAt: o.at.UTC(), Outcome: statusOf(o.kind), Error: o.err}
	if o.d.job != nil {
		a.Attempt = o.d.job.Attempt
	}
	data, _ := json.Marshal(a)
	return data
}

// appendHash appends the count and field/value pairs of the job hash's
// write: its status and the fields that say who ran it, plus the
// result or error. It writes id, type and queue too, so a job enqueued by
// a producer that wrote no hash still has one that answers Get.
func (m *committer) appendHash(args []any, o op, status string) []any {
	at := len(args)
	args = append(args, 0, fieldID, o.d.jobID(), fieldQueue, m.queue, fieldStatus, status,
		fieldWorker, m.name, fieldUpdatedAt, formatUnix(o.at))
	if j := o.d.job; j != nil {
		args = append(args, fieldType, j.Type, fieldMaxAttempts, j.MaxAttempts)
	}
	if o.attempts >= 0 {
		args = append(args, fieldAttempts, o.attempts)
	}
	switch o.kind {
	case opSucceeded:
		args = append(args, fieldResult, o.result)
	case opRetry, opDead:
		args = append(args, fieldError, o.err)
	}
	args[at] = len(args) - at - 1
	return args
}

// statusOf is the status an op gives its job.
func statusOf(k opKind) string {
	switch k {
	case opRunning:
		return StatusRunning
	case opSucceeded:
		return StatusSucceeded
	case opRetry:
		return StatusRetrying
	}
	return StatusFailed
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
