package jobs

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/botfleet/botfleet/internal/wire"
)

// The statuses a job's hash and Info.Status take.
const (
	StatusQueued    = "queued"    // in the stream, not yet started
	StatusRunning   = "running"   // a worker runs it
	StatusRetrying  = "retrying"  // an attempt failed; the next waits for its backoff
	StatusSucceeded = "succeeded" // done; the hash holds the result
	StatusFailed    = "failed"    // dead-lettered; the hash holds the error
)

// Stream entry fields: the job as workers receive it.
const (
	fieldID          = "id"
	fieldType        = "type"
	fieldPayload     = "payload"
	fieldAttempt     = "attempt"
	fieldMaxAttempts = "max_attempts"
	fieldEnqueuedAt  = "enqueued_at"
)

// Fields a dead-letter entry adds to the job's.
const (
	fieldError    = "error"
	fieldWorker   = "worker"
	fieldFailedAt = "failed_at"
	fieldStreamID = "stream_id"
)

// Fields of the job:<id> hash beyond id, type, max_attempts, error and worker.
const (
	fieldQueue     = "queue"
	fieldStatus    = "status"
	fieldAttempts  = "attempts"
	fieldResult    = "result"
	fieldCreatedAt = "created_at"
	fieldUpdatedAt = "updated_at"
)

// Limits on what a job carries, so one job cannot bloat Redis.
const (
	// MaxPayloadSize is the largest payload Enqueue accepts, in bytes of JSON.
	MaxPayloadSize = 1 << 20
	// MaxResultSize is the largest result a handler may return, in bytes of
	// JSON; a larger one fails the attempt.
	MaxResultSize = 1 << 20
	// maxErrorLen bounds the error text kept in the hash and dead letter.
	maxErrorLen = 4096
	// maxTypeLen bounds a job type's length.
	maxTypeLen = 100
)

// Job is one delivery of a job to a handler. A handler must not keep it
// after it returns.
type Job struct {
	ID          string          // "<type>.<random>", e.g. "browser.navigate.k3f9x2m7q1za"
	Type        string          // selects the handler, e.g. "browser.navigate"
	Queue       string          // the queue it came from, e.g. "default"
	Payload     json.RawMessage // the handler's input, JSON
	Attempt     int             // 1 for the first run, 2 for the first retry, ...
	MaxAttempts int             // the attempt after which a failure dead-letters it
	EnqueuedAt  time.Time       // when the producer enqueued it; zero if unknown
}

// Decode unmarshals the payload into v. Its error wraps ErrSkipRetry: a
// payload that does not decode now never will.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("%s: bad payload: %w (%w)", j.Type, err, ErrSkipRetry)
	}
	return nil
}

// ErrSkipRetry, wrapped in a handler's error, fails the job at once: it is
// dead-lettered without the retries left, because retrying cannot help (a
// bad payload, a URL that is not http).
var ErrSkipRetry = errors.New("jobs: not retried")

// Info is what the job:<id> hash says about a job: the answer to "what
// happened to my job".
type Info struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Queue       string          `json:"queue"`
	Status      string          `json:"status"`   // StatusQueued, ...
	Attempts    int             `json:"attempts"` // runs started so far; a delivery read ahead and never started is none
	MaxAttempts int             `json:"max_attempts"`
	Result      json.RawMessage `json:"result,omitempty"` // when succeeded
	Error       string          `json:"error,omitempty"`  // the last attempt's error, while retrying or failed
	Worker      string          `json:"worker,omitempty"` // the consumer that ran the last attempt
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// FieldError reports a malformed field of a stream entry: such an entry is
// dead-lettered at once with this error. Its Entry is "jobs"; it is the
// heartbeat's FieldError type too (internal/wire).
type FieldError = wire.FieldError

func fieldErr(field, format string, args ...any) error {
	return wire.FieldErrorf("jobs", field, format, args...)
}

// Decode reads a stream entry back into a Job, as a worker in any language
// should: id, type and payload (JSON) are required; attempt (default 1),
// max_attempts (default: the consumer's) and enqueued_at are checked when
// present. Unknown fields are ignored. The error, a *FieldError, names the
// first field found wrong.
func Decode(fields map[string]string) (*Job, error) { return decode(fields) }

// decode serves Decode and the consumer, whose go-redis entries hold their
// values as any.
func decode[V any](fields map[string]V) (*Job, error) {
	get := func(name string) (string, bool, error) {
		v, ok := fields[name]
		if !ok {
			return "", false, nil
		}
		s, isString := any(v).(string)
		if !isString {
			return "", true, fieldErr(name, "not a string")
		}
		return s, true, nil
	}
	j := &Job{}
	var err error
	if j.ID, err = required(get, fieldID); err != nil {
		return nil, err
	}
	if j.Type, err = required(get, fieldType); err != nil {
		return nil, err
	}
	if err := checkType(j.Type); err != nil {
		return nil, fieldErr(fieldType, "%v", err)
	}
	payload, err := required(get, fieldPayload)
	if err != nil {
		return nil, err
	}
	if !json.Valid([]byte(payload)) {
		return nil, fieldErr(fieldPayload, "not valid JSON: %.40q", payload)
	}
	j.Payload = json.RawMessage(payload)
	if j.Attempt, err = optionalCount(get, fieldAttempt, 1); err != nil {
		return nil, err
	}
	if j.MaxAttempts, err = optionalCount(get, fieldMaxAttempts, 0); err != nil {
		return nil, err
	}
	if v, ok, err := get(fieldEnqueuedAt); err != nil {
		return nil, err
	} else if ok && v != "" {
		if j.EnqueuedAt, err = parseUnix(v); err != nil {
			return nil, fieldErr(fieldEnqueuedAt, "%.40q is not Unix seconds", v)
		}
	}
	return j, nil
}

func required(get func(string) (string, bool, error), name string) (string, error) {
	v, ok, err := get(name)
	switch {
	case err != nil:
		return "", err
	case !ok || v == "":
		return "", fieldErr(name, "missing")
	}
	return v, nil
}

// optionalCount reads a positive integer; absent is def.
func optionalCount(get func(string) (string, bool, error), name string, def int) (int, error) {
	v, ok, err := get(name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fieldErr(name, "%.40q is not a positive integer", v)
	}
	return n, nil
}

// checkType accepts what makes a readable id and metric label: letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func checkType(typ string) error {
	if typ == "" {
		return errors.New("empty job type")
	}
	if len(typ) > maxTypeLen {
		return fmt.Errorf("job type %.20q...: longer than %d bytes", typ, maxTypeLen)
	}
	if !wordChars(typ) {
		return fmt.Errorf("job type %q: want letters, digits, '.', '_' or '-', starting with a letter or digit", typ)
	}
	return nil
}

// checkID accepts a caller-chosen job id: what NewID makes, and any other
// 1 to 200 letters, digits, '.', '_' and '-', starting with a letter or
// digit, so that it is safe in a key and a URL path.
func checkID(id string) error {
	if len(id) > maxIDLen {
		return fmt.Errorf("job id %.20q...: longer than %d bytes", id, maxIDLen)
	}
	if id == "" || !wordChars(id) {
		return fmt.Errorf("job id %q: want letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// checkIdempotencyKey accepts "" (none) and up to 255 bytes of printable
// ASCII, what an HTTP header carries.
func checkIdempotencyKey(key string) error {
	if len(key) > maxIdempotencyKeyLen {
		return fmt.Errorf("idempotency key of %d bytes: more than %d", len(key), maxIdempotencyKeyLen)
	}
	for _, c := range []byte(key) {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("idempotency key %q: want printable ASCII", key)
		}
	}
	return nil
}

// wordChars reports whether s is letters, digits, '.', '_' and '-',
// starting with a letter or digit.
func wordChars(s string) bool {
	for i, c := range []byte(s) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// idRandomLen is the length of an id's random part: 12 base36 characters,
// 62 bits, so that ids stay unique among the many millions of jobs a busy
// queue keeps hashes for within ResultTTL.
const idRandomLen = 12

// pow36 is 36^idRandomLen.
const pow36 = 4738381338321616896

// NewID returns a new job id for a job of type typ: "<typ>.<12 random
// base36 characters>", e.g. "browser.navigate.k3f9x2m7q1za". A producer
// that wants to know a job's id before it is queued (to look it up after
// a lost answer) passes one as EnqueueOptions.ID.
func NewID(typ string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	s := strconv.FormatUint(binary.LittleEndian.Uint64(b[:])%pow36, 36)
	var sb strings.Builder
	sb.Grow(len(typ) + 1 + idRandomLen)
	sb.WriteString(typ)
	sb.WriteByte('.')
	for range idRandomLen - len(s) {
		sb.WriteByte('0')
	}
	sb.WriteString(s)
	return sb.String()
}

// formatUnix writes t as Unix seconds with a millisecond fraction,
// "1688851200.123", the one time format of the wire (internal/wire).
func formatUnix(t time.Time) string { return wire.FormatUnix(t) }

// parseUnix reads Unix seconds by the wire's one rule (internal/wire).
func parseUnix(v string) (time.Time, error) { return wire.ParseUnix(v) }

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "…"
}
