package jobs

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging/logtest"
)

// TestIntakeNeverTrims fills the stream past the old MAXLEN ~ 100000 cap
// (by two stream nodes of 100 entries, what approximate trimming drops),
// then enqueues and promotes a retry: no waiting job is dropped.
func TestIntakeNeverTrims(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	const waiting = 100_000 + 200
	fill := `for i = 1, tonumber(ARGV[1]) do
  redis.call('XADD', KEYS[1], '*', 'id', 'echo.fill' .. i, 'type', 'echo', 'payload', '{}')
end`
	if err := rdb.Eval(ctx, fill, []string{"jobs:default"}, waiting).Err(); err != nil && err != redis.Nil {
		t.Fatalf("filling the stream: %v", err)
	}
	first := rdb.XRangeN(ctx, "jobs:default", "-", "+", 1).Val()[0].ID
	check := func(step string, want int64) {
		t.Helper()
		if n := rdb.XLen(ctx, "jobs:default").Val(); n != want {
			t.Errorf("after %s: XLEN = %d, want %d: nothing trimmed", step, n, want)
		}
		if got := rdb.XRange(ctx, "jobs:default", first, first).Val(); len(got) != 1 {
			t.Errorf("after %s: the oldest waiting entry %s is gone", step, first)
		}
	}

	q := NewQueue(rdb, "", QueueOptions{MaxBacklog: 2 * waiting})
	for range 10 {
		enqueue(t, q, "echo", nil)
	}
	check("10 more jobs", waiting+10)

	c := NewConsumer(rdb, "", "worker-a", NewMux(), ConsumerOptions{})
	rdb.ZAdd(ctx, "jobs:default:retry", redis.Z{Score: 1, Member: `["id","echo.retried","type","echo","payload","{}","attempt","2"]`})
	c.keeper.promote(ctx)
	check("a retry moved back", waiting+11)
}

// TestBacklogLimit: at MaxBacklog jobs waiting, running or waiting for a
// retry, Enqueue refuses before writing anything; a retried submission of
// a job already accepted is still answered; room comes back as jobs finish.
func TestBacklogLimit(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{MaxBacklog: 5})
	first, _, err := q.EnqueueWith(ctx, "count", nil, EnqueueOptions{IdempotencyKey: "order-1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		enqueue(t, q, "count", nil)
	}
	rdb.ZAdd(ctx, "jobs:default:retry", redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()),
		Member: `["id","count.retried","type","count","payload","{}","attempt","2"]`})
	keysBefore := rdb.DBSize(ctx).Val()

	_, err = q.Enqueue(ctx, "count", nil)
	if !errors.Is(err, ErrBacklogFull) {
		t.Fatalf("Enqueue with 4 jobs queued and 1 retrying, MaxBacklog 5 = %v, want ErrBacklogFull", err)
	}
	if n := rdb.DBSize(ctx).Val(); n != keysBefore {
		t.Errorf("%d keys after the refusal, want %d: nothing written", n, keysBefore)
	}
	if n := rdb.XLen(ctx, "jobs:default").Val(); n != 4 {
		t.Errorf("XLEN = %d, want 4", n)
	}
	if st, err := q.Stats(ctx); err != nil || st.Backlog != 5 || st.MaxBacklog != 5 {
		t.Errorf("Stats = %+v, %v; want backlog 5 of 5", st, err)
	}
	again, existed, err := q.EnqueueWith(ctx, "count", nil, EnqueueOptions{IdempotencyKey: "order-1"})
	if err != nil || !existed || again.ID != first.ID {
		t.Errorf("resubmitting an accepted job while full = %+v, %v, %v; want the job, existed", again, existed, err)
	}

	mux := NewMux()
	mux.HandleFunc("count", func(context.Context, *Job) (any, error) { return nil, nil })
	startConsumer(t, rdb, "", "worker-1", mux, testOptions(logtest.NewRecorder()))
	waitFor(t, "the finished jobs to leave the stream", func() bool { return rdb.XLen(ctx, "jobs:default").Val() == 0 })
	if _, err := q.Enqueue(ctx, "count", nil); err != nil {
		t.Errorf("Enqueue after the jobs finished = %v, want accepted", err)
	}
}

// TestEnqueueWith covers idempotent submission and caller-chosen ids: a
// repeated key or id returns the first job and queues nothing.
func TestEnqueueWith(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		first  EnqueueOptions
		second EnqueueOptions
	}{
		{name: "same idempotency key", first: EnqueueOptions{IdempotencyKey: "req-1"}, second: EnqueueOptions{IdempotencyKey: "req-1"}},
		{name: "same id", first: EnqueueOptions{ID: "echo.mine-1"}, second: EnqueueOptions{ID: "echo.mine-1"}},
		{name: "key of the first call, another id", first: EnqueueOptions{ID: "echo.a", IdempotencyKey: "req-2"},
			second: EnqueueOptions{ID: "echo.b", IdempotencyKey: "req-2"}},
		{name: "id of the first call, a new key", first: EnqueueOptions{ID: "echo.c"}, second: EnqueueOptions{ID: "echo.c", IdempotencyKey: "req-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := newRedis(t)
			q := NewQueue(rdb, "", QueueOptions{ResultTTL: time.Hour})
			got, existed, err := q.EnqueueWith(ctx, "echo", "first", tt.first)
			if err != nil || existed || got.Status != StatusQueued {
				t.Fatalf("first EnqueueWith = %+v, %v, %v; want queued, new", got, existed, err)
			}
			if tt.first.ID != "" && got.ID != tt.first.ID {
				t.Errorf("ID = %q, want the caller's %q", got.ID, tt.first.ID)
			}
			again, existed, err := q.EnqueueWith(ctx, "echo", "second", tt.second)
			if err != nil || !existed || !infoEqual(again, got) {
				t.Errorf("second EnqueueWith = %+v, %v, %v; want %+v, existed", again, existed, err, got)
			}
			if n := rdb.XLen(ctx, "jobs:default").Val(); n != 1 {
				t.Errorf("XLEN = %d, want 1: the second call queues nothing", n)
			}
			if key := tt.first.IdempotencyKey; key != "" {
				ttl := rdb.PTTL(ctx, "jobs:default:idempotency:"+key).Val()
				if id := rdb.Get(ctx, "jobs:default:idempotency:"+key).Val(); id != got.ID || ttl <= 59*time.Minute || ttl > time.Hour {
					t.Errorf("idempotency key -> %q, TTL %v; want %q, ResultTTL (1h)", id, ttl, got.ID)
				}
			}
		})
	}

	t.Run("concurrent submissions with one key", func(t *testing.T) {
		_, rdb := newRedis(t)
		q := NewQueue(rdb, "", QueueOptions{})
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ids     = map[string]bool{}
			created int
		)
		for range n {
			wg.Go(func() {
				info, existed, err := q.EnqueueWith(ctx, "echo", nil, EnqueueOptions{IdempotencyKey: "same"})
				if err != nil {
					t.Errorf("EnqueueWith: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[info.ID] = true
				if !existed {
					created++
				}
			})
		}
		wg.Wait()
		if len(ids) != 1 || created != 1 || rdb.XLen(ctx, "jobs:default").Val() != 1 {
			t.Errorf("%d submissions: ids %v, %d created, XLEN %d; want one job", n, ids, created, rdb.XLen(ctx, "jobs:default").Val())
		}
	})
}

func TestNewID(t *testing.T) {
	id := NewID("browser.navigate")
	if ok, _ := regexp.MatchString(`^browser\.navigate\.[0-9a-z]{12}$`, id); !ok {
		t.Errorf("NewID = %q, want browser.navigate.<12 base36 characters>", id)
	}
	if err := checkID(id); err != nil {
		t.Errorf("checkID(NewID) = %v", err)
	}
	if other := NewID("browser.navigate"); other == id {
		t.Errorf("NewID twice = %q", id)
	}
}
