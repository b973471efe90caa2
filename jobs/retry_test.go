package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging/logtest"
)

// TestRetriesThenDeadLetter drives the retry schedule with a fake clock:
// each failure puts the job in the retry set due Backoff, 2 x Backoff, ...
// later, and nothing runs again until the clock gets there.
func TestRetriesThenDeadLetter(t *testing.T) {
	tests := []struct {
		name         string
		failUntil    int   // attempts that fail; 0: all
		err          error // what a failing attempt returns
		wantStatus   string
		wantAttempts int
		wantError    string
	}{
		{name: "fails every attempt", err: errors.New("upstream down"), wantStatus: StatusFailed, wantAttempts: 3, wantError: "attempt 3: upstream down"},
		{name: "succeeds on the third attempt", failUntil: 2, err: errors.New("flaky"), wantStatus: StatusSucceeded, wantAttempts: 3},
		{name: "skip retry", err: fmt.Errorf("bad input: %w", ErrSkipRetry), wantStatus: StatusFailed, wantAttempts: 1, wantError: "attempt 1: bad input: jobs: not retried"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := newRedis(t)
			clock := newFakeClock()
			q := NewQueue(rdb, "", QueueOptions{Clock: clock})
			var runs atomic.Int32
			mux := NewMux()
			mux.HandleFunc("flaky", func(_ context.Context, job *Job) (any, error) {
				n := runs.Add(1)
				if int(n) != job.Attempt {
					t.Errorf("run %d has Attempt %d", n, job.Attempt)
				}
				if tt.failUntil == 0 || job.Attempt <= tt.failUntil {
					return nil, fmt.Errorf("attempt %d: %w", job.Attempt, tt.err)
				}
				return "ok", nil
			})
			o := testOptions(logtest.NewRecorder())
			o.Backoff, o.Clock = 10*time.Second, clock
			c := startConsumer(t, rdb, "", "worker-1", mux, o)
			info := enqueue(t, q, "flaky", map[string]int{"n": 1})

			start := clock.Now()
			for attempt := 1; attempt < tt.wantAttempts; attempt++ {
				// Wait for this attempt's outcome, not for the "retrying"
				// the previous attempt left, which the hash says until the
				// running status and this failure are written.
				retrying := waitInfo(t, q, info.ID, "to record attempt "+strconv.Itoa(attempt), func(i Info) bool {
					return i.Attempts >= attempt && i.Status != StatusRunning
				})
				if retrying.Status != StatusRetrying || retrying.Attempts != attempt || !strings.Contains(retrying.Error, "attempt "+strconv.Itoa(attempt)) {
					t.Errorf("after attempt %d: Info = %+v, want retrying, attempts %d and its error", attempt, retrying, attempt)
				}
				// Backoff doubles: due 10s, then 20s, after the failure.
				backoff := 10 * time.Second << (attempt - 1)
				wantDue := clock.Now().Add(backoff)
				members := rdb.ZRangeWithScores(context.Background(), "jobs:default:retry", 0, -1).Val()
				if len(members) != 1 || int64(members[0].Score) != wantDue.UnixMilli() {
					t.Fatalf("retry set = %v, want one member due %v (%d)", members, wantDue, wantDue.UnixMilli())
				}
				if got := runs.Load(); int(got) != attempt {
					t.Fatalf("runs = %d before the backoff passed, want %d", got, attempt)
				}
				clock.Advance(backoff - time.Second)
				c.keeper.promote(context.Background()) // as the keeper's own timer does
				if n := rdb.ZCard(context.Background(), "jobs:default:retry").Val(); n != 1 {
					t.Fatalf("a second before the retry is due, the retry set holds %d members, want 1", n)
				}
				clock.Advance(time.Second)
				// The keeper's timer fires too, unless it was between two
				// waits when the clock moved: promote as it would.
				c.keeper.promote(context.Background())
				waitFor(t, "the retry to run", func() bool { return int(runs.Load()) > attempt })
			}
			final := waitStatus(t, q, info.ID, tt.wantStatus)
			if final.Attempts != tt.wantAttempts || final.Error != tt.wantError || final.MaxAttempts != 3 {
				t.Errorf("Info = %+v, want attempts %d, max 3, error %q", final, tt.wantAttempts, tt.wantError)
			}
			if got := final.UpdatedAt.Sub(start); got != 30*time.Second && tt.wantAttempts == 3 {
				t.Errorf("UpdatedAt = start + %v, want + 30s (10s + 20s of backoff)", got)
			}
			dead := deadEntries(t, rdb, "default")
			if tt.wantStatus != StatusFailed {
				if len(dead) != 0 {
					t.Errorf("dead letters = %v, want none", dead)
				}
				return
			}
			if len(dead) != 1 {
				t.Fatalf("dead letters = %v, want 1", dead)
			}
			d := dead[0]
			want := map[string]string{
				"id": info.ID, "type": "flaky", "payload": `{"n":1}`, "attempt": strconv.Itoa(tt.wantAttempts),
				"max_attempts": "3", "error": tt.wantError, "worker": "worker-1", "enqueued_at": formatUnix(start),
			}
			for k, v := range want {
				if d[k] != v {
					t.Errorf("dead entry %s = %q, want %q", k, d[k], v)
				}
			}
			if d["stream_id"] == "" || d["failed_at"] == "" {
				t.Errorf("dead entry = %v, want stream_id and failed_at", d)
			}
		})
	}
}
