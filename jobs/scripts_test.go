package jobs

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// servers are the Redis implementations the scripts must work on.
var servers = []struct {
	name  string
	start func(t *testing.T) redis.UniversalClient
}{
	{name: "redis-server", start: func(t *testing.T) redis.UniversalClient { _, rdb := newRedis(t); return rdb }},
	{name: "miniredis", start: func(t *testing.T) redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}},
}

func TestLeaseScript(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			rdb := srv.start(t)
			ctx := context.Background()
			c := NewConsumer(rdb, "", "worker-a", NewMux(), ConsumerOptions{})
			other := NewConsumer(rdb, "", "worker-b", NewMux(), ConsumerOptions{})
			if err := c.reader.ensureGroup(ctx); err != nil {
				t.Fatal(err)
			}
			id := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default", Values: []string{"id", "x"}}).Val()
			rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "worker-a", Streams: []string{"jobs:default", ">"}, Block: -1})
			pending := func() redis.XPendingExt {
				t.Helper()
				p := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: "jobs:default", Group: Group, Start: "-", End: "+", Count: 10}).Val()
				if len(p) != 1 {
					t.Fatalf("pending = %v, want one entry", p)
				}
				return p[0]
			}

			tests := []struct {
				name      string
				c         *Consumer
				idle      time.Duration
				delta     int
				wantLost  []string
				wantOwner string
				wantCount int64
				wantIdle  time.Duration // at least
			}{
				{name: "renew", c: c, wantOwner: "worker-a", wantCount: 1},
				{name: "another worker's entry is not taken", c: other, wantLost: []string{id}, wantOwner: "worker-a", wantCount: 1},
				{name: "give back", c: c, idle: giveBackIdle, delta: -1, wantOwner: "worker-a", wantCount: 0, wantIdle: giveBackIdle},
			}
			for _, tt := range tests {
				lost, err := tt.c.keeper.lease(ctx, []string{id}, tt.idle, tt.delta)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				p := pending()
				if !slices.Equal(lost, tt.wantLost) || p.Consumer != tt.wantOwner || p.RetryCount != tt.wantCount || p.Idle < tt.wantIdle {
					t.Errorf("%s: lost %v, pending %+v; want lost %v, owner %s, count %d, idle at least %v",
						tt.name, lost, p, tt.wantLost, tt.wantOwner, tt.wantCount, tt.wantIdle)
				}
			}
			// Given back, the entry goes to the next claim whatever its timeout.
			claimed, _, err := rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: "jobs:default", Group: Group, Consumer: "worker-b", MinIdle: time.Hour, Start: "0-0"}).Result()
			if err != nil || len(claimed) != 1 {
				t.Errorf("XAUTOCLAIM after give-back = %v, %v; want the entry", claimed, err)
			}
			// Acknowledged (its outcome written while a renewal ran), the
			// entry is no one's: not reported as lost to another worker.
			rdb.XAck(ctx, "jobs:default", Group, id)
			if lost, err := c.keeper.lease(ctx, []string{id}, 0, 0); err != nil || len(lost) != 0 {
				t.Errorf("lease of an acknowledged entry: lost %v, %v; want none", lost, err)
			}
		})
	}
}

func TestPromoteScript(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			rdb := srv.start(t)
			ctx := context.Background()
			clock := newFakeClock()
			now := clock.Now() // 1688851200000 ms
			c := NewConsumer(rdb, "", "worker-a", NewMux(), ConsumerOptions{Block: time.Second, Clock: clock})
			add := func(due time.Time, member string) {
				rdb.ZAdd(ctx, "jobs:default:retry", redis.Z{Score: float64(due.UnixMilli()), Member: member})
			}
			add(now.Add(-time.Second), `["id","a.1","type","a","payload","{\"x\":\"<é>\"}","attempt","2"]`)
			add(now, `["id","a.2","type","a","payload","null","attempt","3"]`)
			add(now.Add(-time.Second), `not json`)
			add(now.Add(300*time.Millisecond), `["id","a.3","type","a","payload","1","attempt","2"]`)

			if wait := c.keeper.promote(ctx); wait != 300*time.Millisecond {
				t.Errorf("promote: wait %v, want 300ms: until the next retry", wait)
			}
			var got []map[string]any
			for _, m := range rdb.XRange(ctx, "jobs:default", "-", "+").Val() {
				got = append(got, m.Values)
			}
			want := []map[string]any{
				{"id": "a.1", "type": "a", "payload": `{"x":"<é>"}`, "attempt": "2"},
				{"id": "a.2", "type": "a", "payload": "null", "attempt": "3"},
			}
			if len(got) != len(want) {
				t.Fatalf("stream = %v, want %v", got, want)
			}
			for i := range want {
				for k, v := range want[i] {
					if got[i][k] != v {
						t.Errorf("entry %d: %s = %q, want %q", i, k, got[i][k], v)
					}
				}
			}
			if dead := deadEntries(t, rdb, "default"); len(dead) != 1 || dead[0]["member"] != "not json" {
				t.Errorf("dead letters = %v, want the member that is not JSON", dead)
			}
			if n := rdb.ZCard(ctx, "jobs:default:retry").Val(); n != 1 {
				t.Errorf("retry set holds %d, want 1: the one not due", n)
			}
			clock.Advance(time.Hour)
			if wait := c.keeper.promote(ctx); wait != time.Second {
				t.Errorf("promote with nothing left: wait %v, want Block (1s)", wait)
			}
		})
	}
}
