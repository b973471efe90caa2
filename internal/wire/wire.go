// Package wire holds the primitives of botfleet's Redis wire formats that
// the heartbeat, the job queue and the fleet view share, so that they have
// one rule each: how times are written and read, how a malformed field is
// reported, and which Redis errors are replies rather than outages. It
// imports the standard library and go-redis only.
package wire

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxSeconds bounds the numbers read as seconds, so that converting them
// to a time.Duration or time.Time cannot overflow: about year 2242.
const MaxSeconds = 1 << 33

// FormatUnix writes t as Unix seconds with a millisecond fraction,
// "1688851200.123"; the zero time is "".
func FormatUnix(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	// Exact to the millisecond: float64 holds Unix milliseconds up to 2^53.
	return strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)
}

// FormatSeconds writes d in seconds, "30" or "1.5".
func FormatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// ParseUnix reads non-negative Unix seconds, "1688851200",
// "1688851200.123" or any float form. The plain decimal form is read
// exactly, to the nanosecond, whatever the number of digits; other forms
// to the float's precision.
func ParseUnix(v string) (time.Time, error) {
	intPart, frac, hasFrac := strings.Cut(v, ".")
	if sec, err := strconv.ParseUint(intPart, 10, 64); err == nil && sec <= MaxSeconds && (!hasFrac || allDigits(frac)) {
		var nsec int64
		for i, c := range []byte(frac) {
			if i == 9 {
				break
			}
			nsec += int64(c-'0') * pow10[8-i]
		}
		return time.Unix(int64(sec), nsec).UTC(), nil
	}
	f, err := ParseSeconds(v)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, 0).Add(time.Duration(f * 1e9)).UTC(), nil
}

var pow10 = [9]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseSeconds reads a finite, non-negative number of seconds, at most
// MaxSeconds.
func ParseSeconds(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil:
		return 0, errors.New("not a number")
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, errors.New("not a finite number")
	case f < 0:
		return 0, errors.New("negative")
	case f > MaxSeconds:
		return 0, errors.New("too large")
	}
	return f, nil
}

// FieldError reports a malformed field of an entry read from Redis: a
// heartbeat's or a job's. heartbeat.FieldError and jobs.FieldError are
// this type.
type FieldError struct {
	Entry  string // what the entry is: "heartbeat", "jobs"
	Field  string // the field's name, "timestamp"
	Reason string // what is wrong with it, and what is allowed
}

// Error names the entry, the field, and what is wrong with it.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: field %q: %s", e.Entry, e.Field, e.Reason)
}

// FieldErrorf returns a *FieldError for field of entry.
func FieldErrorf(entry, field, format string, args ...any) error {
	return &FieldError{Entry: entry, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// IsReplyError reports whether err is Redis's answer to one command (such
// as WRONGTYPE or NOGROUP), as opposed to a failure to reach Redis at all;
// redis.Nil, "no such key", is not one.
func IsReplyError(err error) bool {
	var re redis.Error
	return err != nil && errors.As(err, &re) && !errors.Is(err, redis.Nil)
}

// IsCluster reports whether c speaks to a Redis Cluster (go-redis's
// ClusterClient). There a transaction or a script spans only the keys of
// one hash slot, so the writers use their cluster key names (hash tags)
// and split what would cross slots.
func IsCluster(c any) bool {
	_, ok := c.(*redis.ClusterClient)
	return ok
}

// TxPipelined returns c.TxPipelined, which runs the queued commands in one
// MULTI/EXEC; on a Redis Cluster, where a transaction may not span hash
// slots, c.Pipelined: the same commands in one round trip per node, each
// on its own. Writers whose keys span slots by design use it and make
// atomic, with a script, what must be.
func TxPipelined(c redis.Cmdable) func(context.Context, func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	if IsCluster(c) {
		return c.Pipelined
	}
	return c.TxPipelined
}
