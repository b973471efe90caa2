package redistest

import (
	"cmp"
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

// TestClusterWithReplicas starts a cluster of 3 masters with a replica
// each and checks that, when StartClusterWithReplicas returns, every
// master's replica is known, linked and in sync: a write on a master that
// WAITs for one replica is readable on the replica ReplicasOf names.
func TestClusterWithReplicas(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartClusterWithReplicas(t, 3, 1)
	t.Logf("StartClusterWithReplicas(t, 3, 1) took %v", time.Since(start).Round(time.Millisecond))

	addrs := c.Addrs()
	if len(addrs) != 6 || len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 6 {
		t.Fatalf("Addrs() = %v, want 6 distinct addresses", addrs)
	}
	ctx := t.Context()
	rdb := c.Client(t)
	var masters, replicas []string
	// {a}, {b} and {c} hash to slots on each of the three masters.
	for _, k := range []string{"{a}k", "{b}k", "{c}k"} {
		if err := rdb.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		master, err := rdb.MasterForKey(ctx, k)
		if err != nil {
			t.Fatalf("MasterForKey(%s): %v", k, err)
		}
		addr := master.Options().Addr
		if n, err := master.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
			t.Fatalf("WAIT 1 on %s, the master of %s = %d, %v; want 1", addr, k, n, err)
		}
		rs := c.ReplicasOf(t, addr)
		if len(rs) != 1 || rs[0] == addr || !slices.Contains(addrs, rs[0]) {
			t.Fatalf("ReplicasOf(%s) = %v, want one other node of %v", addr, rs, addrs)
		}
		masters, replicas = append(masters, addr), append(replicas, rs[0])

		replica := redis.NewClient(&redis.Options{Addr: rs[0], MaxRetries: -1})
		defer replica.Close()
		repl, err := replica.Info(ctx, "replication").Result()
		if f := infoFields(repl); err != nil || f["role"] != "slave" || f["master_host"]+":"+f["master_port"] != addr {
			t.Errorf("INFO replication of %s: %v, %v; want a replica of %s", rs[0], f, err, addr)
		}
		// Without READONLY a replica redirects reads to its master.
		if _, err := replica.Get(ctx, k).Result(); err == nil || !strings.HasPrefix(err.Error(), "MOVED") || !strings.HasSuffix(err.Error(), addr) {
			t.Errorf("GET %s on the replica %s without READONLY = %v; want MOVED to %s", k, rs[0], err, addr)
		}
		conn := replica.Conn()
		defer conn.Close()
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatalf("READONLY on %s: %v", rs[0], err)
		}
		if got, err := conn.Get(ctx, k).Result(); err != nil || got != "v-"+k {
			t.Errorf("GET %s on the replica %s with READONLY = %q, %v; want %q", k, rs[0], got, err, "v-"+k)
		}
	}
	if all := slices.Concat(masters, replicas); len(slices.Compact(slices.Sorted(slices.Values(all)))) != 6 {
		t.Errorf("masters %v and their replicas %v: want 6 distinct nodes", masters, replicas)
	}

	// A frozen replica confirms nothing; thawed, it catches up.
	master := redis.NewClient(&redis.Options{Addr: masters[0], MaxRetries: -1})
	defer master.Close()
	thaw := c.Freeze(t, replicas[0])
	if err := master.Set(ctx, "{a}frozen", 1, 0).Err(); err != nil {
		t.Fatalf("SET on %s: %v", masters[0], err)
	}
	if n, err := master.Wait(ctx, 1, 100*time.Millisecond).Result(); err != nil || n != 0 {
		t.Errorf("WAIT 1 on %s with its replica %s frozen = %d, %v; want 0", masters[0], replicas[0], n, err)
	}
	thaw()
	if n, err := master.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Errorf("WAIT 1 on %s after the thaw = %d, %v; want 1", masters[0], n, err)
	}
}

func TestStartClusterRefuses(t *testing.T) {
	tests := []struct {
		name     string
		masters  int
		replicas int
		path     string // PATH; "" keeps it
		want     string
	}{
		{name: "two masters", masters: 2, want: "StartClusterWithReplicas(2, 0): a Redis Cluster needs at least 3 masters"},
		{name: "negative replicas", masters: 3, replicas: -1, want: "StartClusterWithReplicas(3, -1): a negative number of replicas"},
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
				if tt.replicas == 0 {
					StartCluster(ft, tt.masters)
				} else {
					StartClusterWithReplicas(ft, tt.masters, tt.replicas)
				}
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

// TestTopologyLacks checks the reading of CLUSTER NODES that decides when
// a cluster with replicas is ready.
func TestTopologyLacks(t *testing.T) {
	const (
		m1 = "m1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n"
		m2 = "m2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922\n"
		m3 = "m3 127.0.0.1:7003@17003,host3 master - 0 1 3 connected 10923-16383\n"
		r1 = "r1 127.0.0.1:7004@17004 slave m1 0 1 1 connected\n"
		r2 = "r2 127.0.0.1:7005@17005 slave m2 0 1 2 connected\n"
		r3 = "r3 127.0.0.1:7006@17006 slave m3 0 1 3 connected\n"
	)
	tests := []struct {
		name     string
		nodes    string
		replicas int
		err      string
	}{
		{name: "masters only", nodes: m1 + m2 + m3},
		{name: "a replica each", nodes: m1 + m2 + m3 + r1 + r2 + r3, replicas: 1},
		{name: "a replica not known yet", nodes: m1 + m2 + m3 + r1 + r2, replicas: 1, err: "CLUSTER NODES: master m3 has 0 replicas, want 1"},
		{name: "a node without its role yet", nodes: m1 + m2 + m3 + r1 + r2 + "r3 127.0.0.1:7006@17006 master - 0 1 0 connected\n", replicas: 1,
			err: "CLUSTER NODES: master m3 has 0 replicas, want 1"},
		{name: "a master without slots", nodes: m1 + m2 + "m3 127.0.0.1:7003@17003 master - 0 1 3 connected\n",
			err: "CLUSTER NODES: 2 masters with slots, want 3"},
		{name: "a node failing", nodes: m1 + m2 + "m3 127.0.0.1:7003@17003 master,fail? - 0 1 3 connected 10923-16383\n",
			err: "CLUSTER NODES: m3 127.0.0.1:7003 flagged fail?"},
		{name: "a node unlinked", nodes: m1 + m2 + m3 + r1 + r2 + "r3 127.0.0.1:7006@17006 slave m3 0 1 3 disconnected\n", replicas: 1,
			err: "CLUSTER NODES: r3 127.0.0.1:7006 link disconnected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes, err := parseClusterNodes(tt.nodes)
			if err != nil {
				t.Fatal(err)
			}
			err = topologyLacks(nodes, 3, tt.replicas)
			if got := fmt.Sprint(err); (tt.err == "" && err != nil) || (tt.err != "" && got != tt.err) {
				t.Errorf("topologyLacks = %v, want %v", err, cmp.Or(tt.err, "nil"))
			}
		})
	}
	nodes, _ := parseClusterNodes(m3 + r3)
	if nodes[0].addr != "127.0.0.1:7003" || !nodes[0].has("master") || !nodes[0].slots || nodes[1].master != "m3" || nodes[1].slots {
		t.Errorf("parseClusterNodes = %+v", nodes)
	}
	if _, err := parseClusterNodes("m1 127.0.0.1:7001@17001 master\n"); err == nil {
		t.Error("parseClusterNodes of a short line: no error")
	}
}

// TestReplicationLacks checks the reading of INFO replication that decides
// when a master's replicas are in sync.
func TestReplicationLacks(t *testing.T) {
	tests := []struct {
		name     string
		info     string
		replicas int
		err      string
	}{
		{name: "master alone", info: "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"},
		{name: "master, replica online", replicas: 1,
			info: "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7004,state=online,offset=14,lag=0\r\n"},
		{name: "master, replica syncing", replicas: 1,
			info: "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7004,state=wait_bgsave,offset=0,lag=0\r\n",
			err:  "INFO replication slave0:ip=127.0.0.1,port=7004,state=wait_bgsave,offset=0,lag=0, want state=online"},
		{name: "master, no replica yet", replicas: 1, info: "role:master\r\nconnected_slaves:0\r\n",
			err: "INFO replication connected_slaves:0, want 1"},
		{name: "replica, link up", replicas: 1, info: "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_link_status:up\r\n"},
		{name: "replica, link down", replicas: 1, info: "role:slave\r\nmaster_link_status:down\r\n",
			err: "INFO replication master_link_status:down, want up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := replicationLacks(tt.info, tt.replicas)
			if got := fmt.Sprint(err); (tt.err == "" && err != nil) || (tt.err != "" && got != tt.err) {
				t.Errorf("replicationLacks = %v, want %v", err, cmp.Or(tt.err, "nil"))
			}
		})
	}
}
