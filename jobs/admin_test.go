package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging/logtest"
)

// TestListPagesNewestFirstByStatusAndType enqueues jobs of two types with
// no worker and pages through the queued ones of one type: newest first,
// every job once, the other type left out.
func TestListPagesNewestFirstByStatusAndType(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	clk := newFakeClock()
	q := NewQueue(rdb, "", QueueOptions{Clock: clk})
	var want []string
	for i := range 7 {
		clk.Advance(time.Millisecond)
		a := enqueue(t, q, "alpha", map[string]int{"i": i})
		want = append(want, a.ID)
		enqueue(t, q, "beta", nil)
	}
	slices.Reverse(want)
	var got []string
	o := ListOptions{Status: StatusQueued, Type: "alpha", Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("more than 5 pages of 3 for 7 jobs")
		}
		page, err := q.List(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			if j.Type != "alpha" || j.Status != StatusQueued {
				t.Errorf("listed %+v, want a queued alpha", j)
			}
			got = append(got, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %v, want newest first %v", got, want)
	}
	all, err := q.List(ctx, ListOptions{Limit: 1000})
	if err != nil || len(all.Jobs) != 14 || all.NextCursor != "" {
		t.Errorf("List(all) = %d jobs, cursor %q, %v; want 14, none", len(all.Jobs), all.NextCursor, err)
	}
	for _, bad := range []ListOptions{{Status: "lost"}, {Limit: 1001}, {Cursor: "x"}} {
		if _, err := q.List(ctx, bad); !errors.Is(err, ErrBadListOptions) {
			t.Errorf("List(%+v) = %v, want ErrBadListOptions", bad, err)
		}
	}
}

// flaky fails while failing is set.
func flakyMux(failing *atomic.Bool) *Mux {
	mux := NewMux()
	h := func(_ context.Context, j *Job) (any, error) {
		if failing.Load() {
			return nil, fmt.Errorf("%s: upstream said no", j.Type)
		}
		return "ok", nil
	}
	mux.HandleFunc("flaky", h)
	mux.HandleFunc("other", h)
	return mux
}

// TestRetryDeadKeepsIDAndHistory runs a job to its death, then retries it:
// the same id runs again from attempt 1 and succeeds, and its history
// keeps each failed attempt with its error and worker.
func TestRetryDeadKeepsIDAndHistory(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	q := NewQueue(rdb, "", QueueOptions{MaxAttempts: 2})
	startConsumer(t, rdb, "", "worker-a", flakyMux(&failing), testOptions(logtest.Capture(t)))
	job := enqueue(t, q, "flaky", map[string]string{"token": "s3cret"})
	waitStatus(t, q, job.ID, StatusFailed)

	d, err := q.Show(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != 2 || d.DeadID == "" || string(d.Payload) != `{"token":"s3cret"}` {
		t.Fatalf("Show = %+v, want 2 attempts, a dead letter and the payload", d)
	}
	for i, a := range d.History {
		if a.Attempt != i+1 || a.Worker != "worker-a" || a.Error != "flaky: upstream said no" || a.StartedAt.IsZero() {
			t.Errorf("attempt %d = %+v, want its number, worker-a, the error and a start", i, a)
		}
	}
	dead, err := q.List(ctx, ListOptions{Status: StatusDead})
	if err != nil || len(dead.Jobs) != 1 || dead.Jobs[0].ID != job.ID {
		t.Fatalf("List(dead) = %+v, %v; want the job", dead, err)
	}

	failing.Store(false)
	if err := q.Retry(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	info := waitStatus(t, q, job.ID, StatusSucceeded)
	if info.Attempts != 1 {
		t.Errorf("attempts after the retry = %d, want 1 (counted afresh)", info.Attempts)
	}
	d, _ = q.Show(ctx, job.ID)
	var outcomes []string
	for _, a := range d.History {
		outcomes = append(outcomes, a.Outcome)
	}
	if want := []string{StatusRetrying, StatusFailed, "retried", StatusSucceeded}; !slices.Equal(outcomes, want) {
		t.Errorf("history outcomes = %v, want %v", outcomes, want)
	}
	if n := len(deadEntries(t, rdb, DefaultQueue)); n != 0 {
		t.Errorf("dead letters after the retry = %d, want 0", n)
	}
	if err := q.Retry(ctx, job.ID); !errors.Is(err, ErrNotDead) {
		t.Errorf("Retry(succeeded job) = %v, want ErrNotDead", err)
	}
}

// TestRetryDeadAndPurgeByFilter retries the dead jobs of one type and
// purges the rest.
func TestRetryDeadAndPurgeByFilter(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	q := NewQueue(rdb, "", QueueOptions{MaxAttempts: 1})
	c := startConsumer(t, rdb, "", "worker-a", flakyMux(&failing), testOptions(logtest.Capture(t)))
	var flaky, other []string
	for range 3 {
		flaky = append(flaky, enqueue(t, q, "flaky", nil).ID)
		other = append(other, enqueue(t, q, "other", nil).ID)
	}
	for _, id := range append(slices.Clone(flaky), other...) {
		waitStatus(t, q, id, StatusFailed)
	}
	c.stop(t, 5*time.Second)
	retried, err := q.RetryDead(ctx, DeadFilter{Type: "flaky", Since: time.Now().Add(-time.Hour)})
	slices.Sort(retried)
	slices.Sort(flaky)
	if err != nil || !slices.Equal(retried, flaky) {
		t.Fatalf("RetryDead(flaky) = %v, %v; want %v", retried, err, flaky)
	}
	for _, id := range flaky {
		waitStatus(t, q, id, StatusQueued)
	}
	purged, err := q.PurgeDead(ctx, DeadFilter{})
	if err != nil || len(purged) != 3 {
		t.Fatalf("PurgeDead = %v, %v; want the 3 others", purged, err)
	}
	for _, id := range other {
		if _, err := q.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%s) after purge = %v, want ErrNotFound", id, err)
		}
	}
	if n := len(deadEntries(t, rdb, DefaultQueue)); n != 0 {
		t.Errorf("dead letters after purge = %d, want 0", n)
	}
	if err := q.Delete(ctx, flaky[0]); !errors.Is(err, ErrNotDead) {
		t.Errorf("Delete(queued job) = %v, want ErrNotDead", err)
	}
	if err := q.Delete(ctx, "nope.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(unknown) = %v, want ErrNotFound", err)
	}
}

// TestPauseHoldsJobsUntilResume pauses a queue with a worker on it: a job
// enqueued then waits (the worker reads the pause twice after it, and it
// is still undelivered), the overview says paused with a latency, and the
// job runs once the queue is resumed.
func TestPauseHoldsJobsUntilResume(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{})
	var failing atomic.Bool
	c := startConsumer(t, rdb, "", "worker-a", flakyMux(&failing), testOptions(logtest.Capture(t)))
	first := enqueue(t, q, "flaky", nil)
	waitStatus(t, q, first.ID, StatusSucceeded)
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer to see the pause", c.Paused)
	job := enqueue(t, q, "flaky", nil)
	checks := c.reader.gate.checks.Load()
	waitFor(t, "two more pause checks", func() bool { return c.reader.gate.checks.Load() >= checks+2 })
	qi, err := q.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !qi.Paused || qi.Waiting != 1 || qi.LatencySeconds <= 0 {
		t.Errorf("Info while paused = %+v, want paused, 1 waiting, a latency", qi)
	}
	if info, _ := q.Get(ctx, job.ID); info.Status != StatusQueued {
		t.Errorf("job while paused is %s, want queued", info.Status)
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, q, job.ID, StatusSucceeded)
	if qi, _ := q.Info(ctx); qi.Paused || qi.RatePerSecond <= 0 {
		t.Errorf("Info after resume = %+v, want not paused, a rate", qi)
	}
	names, err := Queues(ctx, rdb)
	if err != nil || !slices.Equal(names, []string{DefaultQueue}) {
		t.Errorf("Queues = %v, %v; want [default]", names, err)
	}
}

// TestQuietFinishesRunningTakesNoMore quiets a consumer mid-job: the job
// finishes and is recorded, the next waits until the consumer is no
// longer quiet.
func TestQuietFinishesRunningTakesNoMore(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{})
	release := make(chan struct{})
	mux := NewMux()
	mux.HandleFunc("block", func(ctx context.Context, _ *Job) (any, error) {
		<-release
		return nil, nil
	})
	c := startConsumer(t, rdb, "", "worker-a", mux, testOptions(logtest.Capture(t)))
	first := enqueue(t, q, "block", nil)
	waitStatus(t, q, first.ID, StatusRunning)
	c.SetQuiet(true)
	second := enqueue(t, q, "block", nil)
	close(release)
	waitStatus(t, q, first.ID, StatusSucceeded)
	checks := c.reader.gate.checks.Load()
	waitFor(t, "two more pause checks", func() bool { return c.reader.gate.checks.Load() >= checks+2 })
	if info, _ := q.Get(ctx, second.ID); info.Status != StatusQueued {
		t.Errorf("second job while quiet is %s, want queued", info.Status)
	}
	c.SetQuiet(false)
	waitStatus(t, q, second.ID, StatusSucceeded)
}
