package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/logging/logtest"
)

func TestEndToEnd(t *testing.T) {
	_, rdb := newRedis(t)
	rec := logtest.NewRecorder()
	q := NewQueue(rdb, "", QueueOptions{})
	mux := NewMux()
	Builtins(mux, nil)
	mux.HandleFunc("greet", func(ctx context.Context, job *Job) (any, error) {
		var p struct{ Name string }
		if err := job.Decode(&p); err != nil {
			return nil, err
		}
		rec.Logger().InfoContext(ctx, "greeting", "name", p.Name)
		return map[string]string{"greeting": "hello, " + p.Name}, nil
	})
	startConsumer(t, rdb, "", "worker-1", mux, testOptions(rec))

	tests := []struct {
		name    string
		typ     string
		payload any
		want    string
	}{
		{name: "echo object", typ: "echo", payload: map[string]any{"a": 1, "b": []int{2, 3}}, want: `{"a":1,"b":[2,3]}`},
		{name: "echo raw JSON", typ: "echo", payload: json.RawMessage(`"text"`), want: `"text"`},
		{name: "echo null", typ: "echo", payload: nil, want: `null`},
		{name: "own handler", typ: "greet", payload: map[string]string{"name": "ada"}, want: `{"greeting":"hello, ada"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			queued := enqueue(t, q, tt.typ, tt.payload)
			if !strings.HasPrefix(queued.ID, tt.typ+".") || queued.Status != StatusQueued {
				t.Errorf("Enqueue = id %q status %q, want id %q... status queued", queued.ID, queued.Status, tt.typ+".")
			}
			info := waitStatus(t, q, queued.ID, StatusSucceeded)
			if !jsonEqual(t, info.Result, []byte(tt.want)) {
				t.Errorf("Result = %s, want %s", info.Result, tt.want)
			}
			if info.Attempts != 1 || info.Worker != "worker-1" || info.Error != "" || info.Type != tt.typ || info.Queue != "default" {
				t.Errorf("Info = %+v, want attempts 1, worker worker-1, no error, type %s, queue default", info, tt.typ)
			}
			if info.UpdatedAt.Before(info.CreatedAt) || info.CreatedAt.IsZero() {
				t.Errorf("CreatedAt %v, UpdatedAt %v: want set, updated not before created", info.CreatedAt, info.UpdatedAt)
			}
		})
	}
	ctx := context.Background()
	if n := rdb.XLen(ctx, "jobs:default").Val(); n != 0 {
		t.Errorf("XLEN jobs:default = %d after all jobs finished, want 0 (finished entries are deleted)", n)
	}
	found := false
	for _, r := range rec.Records() {
		if r.Message == "greeting" {
			found = true
			if id, _ := r.Attrs[logging.KeyJobID].(string); !strings.HasPrefix(id, "greet.") {
				t.Errorf("handler record job_id = %v, want the job's id", r.Attrs[logging.KeyJobID])
			}
		}
	}
	if !found {
		t.Errorf("no record of the handler's log line; have %q", rec.Messages())
	}
}

func TestConcurrencyLimit(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) {
			_, rdb := newRedis(t)
			q := NewQueue(rdb, "", QueueOptions{})
			var now, most atomic.Int32
			release := make(chan struct{})
			mux := NewMux()
			mux.HandleFunc("hold", func(ctx context.Context, _ *Job) (any, error) {
				n := now.Add(1)
				defer now.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				return nil, nil
			})
			o := testOptions(logtest.NewRecorder())
			o.Concurrency = concurrency
			startConsumer(t, rdb, "", "worker-1", mux, o)
			var ids []string
			for range 3*concurrency + 2 {
				ids = append(ids, enqueue(t, q, "hold", nil).ID)
			}
			waitFor(t, "the consumer to fill its slots", func() bool { return now.Load() == int32(concurrency) })
			close(release)
			for _, id := range ids {
				waitStatus(t, q, id, StatusSucceeded)
			}
			if got := most.Load(); got != int32(concurrency) {
				t.Errorf("at most %d jobs ran at once, want %d", got, concurrency)
			}
		})
	}
}

func TestHandlerPanic(t *testing.T) {
	_, rdb := newRedis(t)
	rec := logtest.NewRecorder()
	q := NewQueue(rdb, "", QueueOptions{MaxAttempts: 2})
	mux := NewMux()
	Builtins(mux, nil)
	var runs atomic.Int32
	mux.HandleFunc("explode", func(context.Context, *Job) (any, error) {
		runs.Add(1)
		panic("boom")
	})
	startConsumer(t, rdb, "", "worker-1", mux, testOptions(rec))

	info := enqueue(t, q, "explode", nil)
	failed := waitStatus(t, q, info.ID, StatusFailed)
	if failed.Error != "panic: boom" || failed.Attempts != 2 || runs.Load() != 2 {
		t.Errorf("Info = %+v after %d runs, want error %q after 2 attempts", failed, runs.Load(), "panic: boom")
	}
	var panics int
	for _, r := range rec.Records() {
		if r.Message != "job handler panicked" {
			continue
		}
		panics++
		stack, _ := r.Attrs["stack"].(string)
		if r.Level != slog.LevelError || r.Attrs[logging.KeyJobID] != info.ID || !strings.Contains(stack, "consumer_test.go") {
			t.Errorf("panic record = level %v, job_id %v, stack %.200q; want ERROR, %s, the handler's stack", r.Level, r.Attrs[logging.KeyJobID], stack, info.ID)
		}
	}
	if panics != 2 {
		t.Errorf("%d panic records, want 2", panics)
	}
	// The worker carries on.
	waitStatus(t, q, enqueue(t, q, "echo", "after").ID, StatusSucceeded)
}

// TestRefusedEntries writes entries by hand, as a buggy producer in another
// language might: each is dead-lettered at once with an error naming what
// is wrong, and the consumer carries on.
func TestRefusedEntries(t *testing.T) {
	_, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	mux := NewMux()
	Builtins(mux, nil)
	var runs atomic.Int32
	mux.HandleFunc("count", func(context.Context, *Job) (any, error) { runs.Add(1); return nil, nil })
	startConsumer(t, rdb, "", "worker-1", mux, testOptions(logtest.NewRecorder()))
	valid := func(id string) map[string]any {
		return map[string]any{"id": id, "type": "count", "payload": "{}", "attempt": "1", "max_attempts": "3", "enqueued_at": "1688851200"}
	}
	tests := []struct {
		name      string
		change    map[string]any // over valid(id); "" deletes
		wantError string
	}{
		{name: "no id", change: map[string]any{"id": ""}, wantError: `field "id": missing`},
		{name: "no type", change: map[string]any{"type": ""}, wantError: `field "type": missing`},
		{name: "bad type", change: map[string]any{"type": "two words"}, wantError: `field "type": job type "two words"`},
		{name: "no payload", change: map[string]any{"payload": ""}, wantError: `field "payload": missing`},
		{name: "payload not JSON", change: map[string]any{"payload": "{oops"}, wantError: `field "payload": not valid JSON`},
		{name: "bad attempt", change: map[string]any{"attempt": "first"}, wantError: `field "attempt": "first" is not a positive integer`},
		{name: "zero max_attempts", change: map[string]any{"max_attempts": "0"}, wantError: `field "max_attempts": "0" is not a positive integer`},
		{name: "bad enqueued_at", change: map[string]any{"enqueued_at": "yesterday"}, wantError: `field "enqueued_at": "yesterday" is not Unix seconds`},
		{name: "attempt beyond max", change: map[string]any{"attempt": "4"}, wantError: "attempt 4: more than max_attempts 3"},
		{name: "unknown type", change: map[string]any{"type": "no.such.type"}, wantError: `unknown job type "no.such.type"`},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("count.refused%d", i)
			fields := valid(id)
			for k, v := range tt.change {
				if v == "" {
					delete(fields, k)
				} else {
					fields[k] = v
				}
			}
			streamID, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default", Values: fields}).Result()
			if err != nil {
				t.Fatal(err)
			}
			var dead map[string]string
			waitFor(t, "the entry to be dead-lettered", func() bool {
				for _, d := range deadEntries(t, rdb, "default") {
					if d["stream_id"] == streamID {
						dead = d
						return true
					}
				}
				return false
			})
			if !strings.Contains(dead["error"], tt.wantError) || dead["worker"] != "worker-1" {
				t.Errorf("dead entry = %v, want error containing %q and worker worker-1", dead, tt.wantError)
			}
			for k, v := range fields {
				if k != "attempt" && dead[k] != v {
					t.Errorf("dead entry %s = %q, want the original %q", k, dead[k], v)
				}
			}
			if _, ok := fields["id"]; ok {
				info := waitStatus(t, q, id, StatusFailed)
				attempt, _ := strconv.Atoi(fields["attempt"].(string))
				if !strings.Contains(info.Error, tt.wantError) || info.Attempts != max(attempt-1, 0) {
					t.Errorf("Info = %+v, want failed, %d attempts (none ran), error containing %q", info, max(attempt-1, 0), tt.wantError)
				}
			}
			if n := rdb.XPending(ctx, "jobs:default", Group).Val().Count; n != 0 {
				t.Errorf("%d entries pending, want 0: a refused entry is acknowledged", n)
			}
		})
	}
	if runs.Load() != 0 {
		t.Errorf("the handler ran %d times, want 0", runs.Load())
	}
	waitStatus(t, q, enqueue(t, q, "count", nil).ID, StatusSucceeded)
}

// TestPoisonJob: a job whose workers died each time it ran has been
// delivered max_attempts times; the next delivery dead-letters it.
func TestPoisonJob(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{})
	info := enqueue(t, q, "echo", "poison")
	// Three workers read it and died.
	if err := rdb.XGroupCreateMkStream(ctx, "jobs:default", Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	msgs := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "ghost-1", Streams: []string{"jobs:default", ">"}, Count: 1, Block: -1}).Val()
	streamID := msgs[0].Messages[0].ID
	for _, ghost := range []string{"ghost-2", "ghost-3"} {
		if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: "jobs:default", Group: Group, Consumer: ghost, Messages: []string{streamID}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	mux := NewMux()
	Builtins(mux, nil)
	o := testOptions(logtest.NewRecorder())
	o.VisibilityTimeout = 50 * time.Millisecond
	startConsumer(t, rdb, "", "worker-1", mux, o)

	failed := waitStatus(t, q, info.ID, StatusFailed)
	if want := "delivered 4 times without finishing"; !strings.Contains(failed.Error, want) || failed.Attempts != 3 {
		t.Errorf("Info = %+v, want 3 attempts and error containing %q", failed, want)
	}
	dead := deadEntries(t, rdb, "default")
	if len(dead) != 1 || dead[0]["attempt"] != "4" || dead[0]["stream_id"] != streamID {
		t.Errorf("dead letters = %v, want the job's entry, attempt 4", dead)
	}
}

func TestHooks(t *testing.T) {
	tests := []struct {
		name       string
		typ        string
		panicky    bool
		wantStatus string
		wantErr    string
	}{
		{name: "success", typ: "echo", wantStatus: StatusSucceeded},
		{name: "failure", typ: "fail", wantStatus: StatusFailed, wantErr: "fail: this job type always fails"},
		{name: "hooks that panic", typ: "echo", panicky: true, wantStatus: StatusSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := newRedis(t)
			rec := logtest.NewRecorder()
			q := NewQueue(rdb, "", QueueOptions{MaxAttempts: 1})
			mux := NewMux()
			Builtins(mux, nil)
			type finish struct {
				id  string
				err error
			}
			started, finished := make(chan string, 1), make(chan finish, 1)
			o := testOptions(rec)
			o.OnStart = func(job *Job) {
				started <- job.ID
				if tt.panicky {
					panic("start hook")
				}
			}
			o.OnFinish = func(job *Job, took time.Duration, err error) {
				finished <- finish{job.ID, err}
				if tt.panicky {
					panic("finish hook")
				}
			}
			startConsumer(t, rdb, "", "worker-1", mux, o)
			info := enqueue(t, q, tt.typ, nil)
			if id := <-started; id != info.ID {
				t.Errorf("OnStart(%s), want %s", id, info.ID)
			}
			f := <-finished
			gotErr := ""
			if f.err != nil {
				gotErr = f.err.Error()
			}
			if f.id != info.ID || gotErr != tt.wantErr {
				t.Errorf("OnFinish(%s, %v), want %s, %q", f.id, f.err, info.ID, tt.wantErr)
			}
			waitStatus(t, q, info.ID, tt.wantStatus)
			if tt.panicky && !hasRecord(rec, slog.LevelError, "consumer hook panicked") {
				t.Errorf("no record of the hooks' panics; have %q", rec.Messages())
			}
		})
	}
}

// TestOnDead: OnDead reports each job that failed for good, once, when its
// dead letter is written: after its last attempt, and for entries
// dead-lettered without running; not a failed attempt that is retried, nor
// a success.
func TestOnDead(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{MaxAttempts: 2})
	type death struct{ typ, err string }
	var (
		mu     sync.Mutex
		deaths = map[string][]death{}
	)
	o := testOptions(logtest.NewRecorder())
	o.OnDead = func(job *Job, err error) {
		mu.Lock()
		defer mu.Unlock()
		deaths[job.ID] = append(deaths[job.ID], death{job.Type, err.Error()})
	}
	mux := NewMux()
	mux.HandleFunc("boom", func(context.Context, *Job) (any, error) { return nil, errors.New("boom") })
	mux.HandleFunc("ok", func(context.Context, *Job) (any, error) { return "ok", nil })
	startConsumer(t, rdb, "", "worker-1", mux, o)

	failing := enqueue(t, q, "boom", nil)
	fine := enqueue(t, q, "ok", nil)
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default", Values: []string{"id", "nope.1", "type", "nope", "payload", "{}"}})
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default", Values: []string{"id", "bad.1", "payload", "{}"}})
	waitStatus(t, q, failing.ID, StatusFailed)
	waitStatus(t, q, fine.ID, StatusSucceeded)
	waitFor(t, "three dead letters reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deaths) == 3
	})
	want := map[string]death{
		failing.ID: {"boom", "boom"},
		"nope.1":   {"nope", `unknown job type "nope": no handler registered`},
		"bad.1":    {"", `malformed entry: jobs: field "type": missing`},
	}
	mu.Lock()
	defer mu.Unlock()
	for id, w := range want {
		if got := deaths[id]; len(got) != 1 || got[0] != w {
			t.Errorf("OnDead for %s: %v, want once with %v", id, got, w)
		}
	}
	if len(deaths) != len(want) {
		t.Errorf("OnDead calls: %v, want %v", deaths, want)
	}
}
