package redistest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/config"
)

func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartCluster(t, 3)
	t.Logf("StartCluster(t, 3) took %v", time.Since(start).Round(time.Millisecond))

	addrs := c.Addrs()
	if len(addrs) != 3 || len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 3 {
		t.Fatalf("Addrs() = %v, want 3 distinct addresses", addrs)
	}
	if want := "redis+cluster://" + strings.Join(addrs, ",") + "/"; c.URL() != want {
		t.Errorf("URL() = %q, want %q", c.URL(), want)
	}

	ctx := t.Context()
	rdb := c.Client(t)
	// {a}, {b} and {c} hash to slots 15495, 3300 and 7365: one on each
	// master; keys sharing a tag share a slot, so MSET may take them.
	keys := []string{"{a}x", "{a}y", "{b}y", "{b}z", "{c}z", "plain"}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	for _, k := range keys {
		if got, err := rdb.Get(ctx, k).Result(); err != nil || got != "v-"+k {
			t.Errorf("GET %s = %q, %v; want %q, nil", k, got, err, "v-"+k)
		}
	}
	if err := rdb.MSet(ctx, "{a}m1", 1, "{a}m2", 2).Err(); err != nil {
		t.Errorf("MSET of one slot: %v", err)
	}

	owners := slotOwners(t, rdb)
	used := map[string]bool{}
	for _, k := range keys {
		slot, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", k, err)
		}
		owner := owners[slot]
		used[owner] = true
		for _, addr := range addrs {
			node := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			got, err := node.Get(ctx, k).Result()
			node.Close()
			if addr == owner {
				if err != nil || got != "v-"+k {
					t.Errorf("GET %s on %s, the owner of slot %d = %q, %v; want %q", k, addr, slot, got, err, "v-"+k)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("MOVED %d %s", slot, owner)) {
				t.Errorf("GET %s on %s = %q, %v; want MOVED %d %s", k, addr, got, err, slot, owner)
			}
		}
	}
	if len(used) != 3 {
		t.Errorf("the keys landed on %d nodes (%v), want all 3", len(used), used)
	}

	// REDIS_URL's parser reads URL, and its client reaches the cluster.
	r, err := config.ParseRedisURL(c.URL())
	if err != nil {
		t.Fatalf("config.ParseRedisURL(%q): %v", c.URL(), err)
	}
	if r.Cluster == nil || !slices.Equal(r.Cluster.Addrs, addrs) {
		t.Fatalf("config.ParseRedisURL(%q) = %+v, want cluster options with addrs %v", c.URL(), r, addrs)
	}
	fromURL := r.NewClient()
	defer fromURL.Close()
	if got, err := fromURL.Get(ctx, "{b}y").Result(); err != nil || got != "v-{b}y" {
		t.Errorf("GET {b}y through REDIS_URL's client = %q, %v; want %q", got, err, "v-{b}y")
	}
}

// slotOwners maps each hash slot to its master's address, from CLUSTER
// SLOTS, checking that all 16384 are covered.
func slotOwners(t *testing.T, rdb *redis.ClusterClient) map[int64]string {
	t.Helper()
	ranges, err := rdb.ClusterSlots(t.Context()).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	owners := map[int64]string{}
	for _, r := range ranges {
		for s := r.Start; s <= r.End; s++ {
			owners[int64(s)] = r.Nodes[0].Addr
		}
	}
	if len(owners) != clusterSlots {
		t.Fatalf("CLUSTER SLOTS covers %d slots, want %d", len(owners), clusterSlots)
	}
	return owners
}

func TestStartClusterRefuses(t *testing.T) {
	tests := []struct {
		name    string
		masters int
		path    string // PATH; "" keeps it
		want    string
	}{
		{name: "two masters", masters: 2, want: "StartCluster(2): a Redis Cluster needs at least 3 masters"},
		{name: "no redis-server", masters: 3, path: "empty",
			want: "redis-server not found: run `make test` (installs it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				t.Setenv("PATH", t.TempDir())
			}
			ft := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				StartCluster(ft, tt.masters)
				ft.msg = "StartCluster returned"
			}()
			<-done
			if !strings.Contains(ft.msg, tt.want) {
				t.Errorf("StartCluster failed with %q, want it to contain %q", ft.msg, tt.want)
			}
		})
	}
}

// TestInfoLacks checks the reading of CLUSTER INFO that decides when a
// cluster is ready.
func TestInfoLacks(t *testing.T) {
	want := map[string]string{"cluster_state": "ok", "cluster_slots_assigned": "16384"}
	tests := []struct {
		name string
		info string
		err  error
	}{
		{name: "ready", info: "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:3\r\n"},
		{name: "failing", info: "cluster_state:fail\r\ncluster_slots_assigned:16384\r\n", err: errors.New("CLUSTER INFO cluster_state:fail, want ok")},
		{name: "slots missing", info: "cluster_state:ok\r\ncluster_slots_assigned:0\r\n", err: errors.New("CLUSTER INFO cluster_slots_assigned:0, want 16384")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := infoLacks(tt.info, want)
			if fmt.Sprint(err) != fmt.Sprint(tt.err) {
				t.Errorf("infoLacks = %v, want %v", err, tt.err)
			}
		})
	}
}
