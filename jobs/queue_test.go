package jobs

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestEnqueue(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	clock := newFakeClock()
	q := NewQueue(rdb, "browser", QueueOptions{MaxAttempts: 5, ResultTTL: time.Hour, Clock: clock})

	info := enqueue(t, q, "browser.navigate", map[string]string{"url": "https://example.com"})
	if ok, _ := regexp.MatchString(`^browser\.navigate\.[0-9a-z]{12}$`, info.ID); !ok {
		t.Errorf("id = %q, want browser.navigate.<12 base36 characters>", info.ID)
	}
	want := Info{ID: info.ID, Type: "browser.navigate", Queue: "browser", Status: StatusQueued, MaxAttempts: 5, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	if !infoEqual(info, want) {
		t.Errorf("Enqueue = %+v, want %+v", info, want)
	}
	got, err := q.Get(ctx, info.ID)
	if err != nil || !infoEqual(got, want) {
		t.Errorf("Get = %+v, %v; want %+v", got, err, want)
	}
	if ttl := rdb.TTL(ctx, "job:"+info.ID).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("TTL of the job hash = %v, want ResultTTL (1h)", ttl)
	}
	msgs := rdb.XRange(ctx, "jobs:browser", "-", "+").Val()
	wantEntry := map[string]any{"id": info.ID, "type": "browser.navigate", "payload": `{"url":"https://example.com"}`,
		"attempt": "1", "max_attempts": "5", "enqueued_at": "1688851200.000"}
	if len(msgs) != 1 || len(msgs[0].Values) != len(wantEntry) {
		t.Fatalf("stream = %v, want one entry %v", msgs, wantEntry)
	}
	for k, v := range wantEntry {
		if msgs[0].Values[k] != v {
			t.Errorf("entry %s = %q, want %q", k, msgs[0].Values[k], v)
		}
	}
	job, err := Decode(map[string]string{"id": info.ID, "type": "browser.navigate", "payload": `{}`, "enqueued_at": "1688851200.000"})
	if err != nil || !job.EnqueuedAt.Equal(clock.Now()) || job.Attempt != 1 {
		t.Errorf("Decode = %+v, %v; want enqueued_at read back, attempt 1", job, err)
	}
}

func infoEqual(a, b Info) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Queue == b.Queue && a.Status == b.Status &&
		a.Attempts == b.Attempts && a.MaxAttempts == b.MaxAttempts && string(a.Result) == string(b.Result) &&
		a.Error == b.Error && a.Worker == b.Worker && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestEnqueueRefuses(t *testing.T) {
	_, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	tests := []struct {
		name    string
		typ     string
		payload any
		o       EnqueueOptions
		want    string
	}{
		{name: "empty type", typ: "", want: "empty job type"},
		{name: "space in type", typ: "http fetch", want: `job type "http fetch"`},
		{name: "type starting with a dot", typ: ".x", want: `job type ".x"`},
		{name: "long type", typ: strings.Repeat("a", maxTypeLen+1), want: "longer than 100 bytes"},
		{name: "payload not marshallable", typ: "echo", payload: func() {}, want: "payload: json: unsupported type"},
		{name: "payload too large", typ: "echo", payload: strings.Repeat("x", MaxPayloadSize), want: "more than 1048576"},
		{name: "id with a space", typ: "echo", o: EnqueueOptions{ID: "echo 1"}, want: `job id "echo 1"`},
		{name: "id with a colon", typ: "echo", o: EnqueueOptions{ID: "job:echo.1"}, want: `job id "job:echo.1"`},
		{name: "long id", typ: "echo", o: EnqueueOptions{ID: strings.Repeat("a", maxIDLen+1)}, want: "longer than 200 bytes"},
		{name: "idempotency key with a newline", typ: "echo", o: EnqueueOptions{IdempotencyKey: "a\nb"}, want: "want printable ASCII"},
		{name: "long idempotency key", typ: "echo", o: EnqueueOptions{IdempotencyKey: strings.Repeat("k", 256)}, want: "more than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := q.EnqueueWith(context.Background(), tt.typ, tt.payload, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EnqueueWith = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if n := rdb.DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("%d keys written, want none", n)
	}
}

func TestGetNotFound(t *testing.T) {
	_, rdb := newRedis(t)
	q := NewQueue(rdb, "", QueueOptions{})
	if _, err := q.Get(context.Background(), "echo.nosuchjob000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
}

func TestStats(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{})
	if st, err := q.Stats(ctx); err != nil || st != (Stats{MaxBacklog: DefaultMaxBacklog}) {
		t.Errorf("Stats of a new queue = %+v, %v; want zeros and the default limit", st, err)
	}
	for range 3 {
		enqueue(t, q, "echo", nil)
	}
	// One delivered, not finished.
	c := NewConsumer(rdb, "", "worker-a", NewMux(), ConsumerOptions{})
	if err := c.reader.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "worker-a", Streams: []string{"jobs:default", ">"}, Count: 1, Block: -1})
	rdb.ZAdd(ctx, "jobs:default:retry", redis.Z{Score: 1, Member: "[]"})
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default:dead", Values: []string{"error", "x"}})
	want := Stats{Length: 3, Pending: 1, Retrying: 1, DeadLetters: 1, Backlog: 4, MaxBacklog: DefaultMaxBacklog}
	if st, err := q.Stats(ctx); err != nil || st != want {
		t.Errorf("Stats = %+v, %v; want %+v", st, err, want)
	}
}

func TestDecode(t *testing.T) {
	valid := func() map[string]string {
		return map[string]string{"id": "a.1", "type": "a", "payload": "{}", "attempt": "2", "max_attempts": "4", "enqueued_at": "1688851200.5", "extra": "kept"}
	}
	tests := []struct {
		name      string
		change    map[string]string // "" deletes
		want      Job
		wantField string // of the *FieldError
	}{
		{name: "complete", want: Job{ID: "a.1", Type: "a", Payload: []byte("{}"), Attempt: 2, MaxAttempts: 4, EnqueuedAt: time.UnixMilli(1688851200500)}},
		{name: "optional fields absent", change: map[string]string{"attempt": "", "max_attempts": "", "enqueued_at": ""},
			want: Job{ID: "a.1", Type: "a", Payload: []byte("{}"), Attempt: 1}},
		{name: "integer seconds", change: map[string]string{"enqueued_at": "1688851200"},
			want: Job{ID: "a.1", Type: "a", Payload: []byte("{}"), Attempt: 2, MaxAttempts: 4, EnqueuedAt: time.Unix(1688851200, 0)}},
		{name: "no id", change: map[string]string{"id": ""}, wantField: "id"},
		{name: "payload not JSON", change: map[string]string{"payload": "nope"}, wantField: "payload"},
		{name: "negative attempt", change: map[string]string{"attempt": "-1"}, wantField: "attempt"},
		{name: "max_attempts not a number", change: map[string]string{"max_attempts": "three"}, wantField: "max_attempts"},
		{name: "enqueued_at negative", change: map[string]string{"enqueued_at": "-5"}, wantField: "enqueued_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := valid()
			for k, v := range tt.change {
				if v == "" {
					delete(fields, k)
				} else {
					fields[k] = v
				}
			}
			job, err := Decode(fields)
			if tt.wantField != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.wantField {
					t.Errorf("Decode = %+v, %v; want a FieldError on %q", job, err, tt.wantField)
				}
				return
			}
			if err != nil || job.ID != tt.want.ID || job.Type != tt.want.Type || string(job.Payload) != string(tt.want.Payload) ||
				job.Attempt != tt.want.Attempt || job.MaxAttempts != tt.want.MaxAttempts || !job.EnqueuedAt.Equal(tt.want.EnqueuedAt) {
				t.Errorf("Decode = %+v, %v; want %+v", job, err, tt.want)
			}
		})
	}
}

func TestMux(t *testing.T) {
	mux := NewMux()
	Builtins(mux, nil)
	mux.HandleFunc("browser.navigate", func(context.Context, *Job) (any, error) { return nil, nil })
	want := []string{"browser.navigate", "echo", "fail", "http.fetch", "sleep"}
	if got := mux.Types(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Types = %v, want %v", got, want)
	}
	if !mux.Has("echo") || mux.Has("nope") {
		t.Errorf("Has(echo), Has(nope) = %v, %v; want true, false", mux.Has("echo"), mux.Has("nope"))
	}
	panics := []struct {
		name string
		do   func()
	}{
		{name: "registered twice", do: func() { mux.HandleFunc("echo", echo) }},
		{name: "nil handler", do: func() { mux.Handle("x", nil) }},
		{name: "nil func", do: func() { mux.HandleFunc("x", nil) }},
		{name: "bad type", do: func() { mux.HandleFunc("a b", echo) }},
	}
	for _, tt := range panics {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tt.do()
		})
	}
}

func TestRunLifecycle(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	r := startConsumer(t, rdb, "", "worker-a", NewMux(), ConsumerOptions{Block: 10 * time.Millisecond})
	waitFor(t, "the group to exist", func() bool { return rdb.Exists(ctx, "jobs:default").Val() == 1 })
	if err := r.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	if err := r.stop(t, time.Second); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if err := r.Run(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Run after Shutdown = %v, want ErrStopped", err)
	}

	// Run returns when its context ends; Shutdown then has nothing to wait for.
	c := NewConsumer(rdb, "", "worker-b", NewMux(), ConsumerOptions{Block: 10 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v after its context ended, want nil", err)
	}
	if err := c.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	// Shutdown before Run.
	if err := NewConsumer(rdb, "", "worker-c", NewMux(), ConsumerOptions{}).Shutdown(ctx); err != nil {
		t.Errorf("Shutdown of a consumer never run = %v", err)
	}
}
