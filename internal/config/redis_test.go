package config

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
)

func TestParseRedisURL(t *testing.T) {
	type want struct {
		sentinels                  []string
		master                     string
		db                         int
		user, pass                 string
		sentinelUser, sentinelPass string
		tls                        bool
		dialTimeout                time.Duration
	}
	tests := []struct {
		name string
		url  string
		want *want // nil: one server
		err  string
	}{
		{name: "one server", url: "redis://:pw@h:6379/2"},
		{name: "sentinels, master, db", url: "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/3",
			want: &want{sentinels: []string{"10.0.0.1:26379", "10.0.0.2:26380"}, master: "mymaster", db: 3, pass: "s3cret"}},
		{name: "default port and db, no password", url: "redis+sentinel://s1,s2:26400,[::1]/m",
			want: &want{sentinels: []string{"s1:26379", "s2:26400", "[::1]:26379"}, master: "m"}},
		{name: "ACL user, escaped password", url: "redis+sentinel://app:p%40ss@s1:26379/m/0",
			want: &want{sentinels: []string{"s1:26379"}, master: "m", user: "app", pass: "p@ss"}},
		{name: "TLS, sentinel password, go-redis option", url: "rediss+sentinel://s1:26379/m/1?sentinel_password=sp&dial_timeout=2s",
			want: &want{sentinels: []string{"s1:26379"}, master: "m", db: 1, sentinelPass: "sp", tls: true, dialTimeout: 2 * time.Second}},
		{name: "no master", url: "redis+sentinel://:hunter2@s1:26379/", err: "no master name"},
		{name: "bad db", url: "redis+sentinel://s1:26379/m/x", err: `database "x"`},
		{name: "bad port", url: "redis+sentinel://s1:99999/m", err: `sentinel address "s1:99999"`},
		{name: "no sentinel", url: "redis+sentinel:///m/0", err: "no sentinel address"},
		{name: "password in the query", url: "redis+sentinel://s1/m?password=hunter2", err: "query parameter password is not allowed"},
		{name: "unknown option", url: "redis+sentinel://:hunter2@s1/m?colour=red", err: "unexpected option"},
		{name: "other scheme", url: "mysql://:hunter2@db:3306", err: "want redis://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRedisURL(t, tt.url, tt.err, "redis+sentinel://")
			if !ok {
				return
			}
			if tt.want == nil {
				if got.Server == nil || got.Failover != nil || got.Cluster != nil {
					t.Fatalf("got %+v; want one server's options", got)
				}
				return
			}
			f := got.Failover
			if f == nil || got.Server != nil || got.Cluster != nil {
				t.Fatalf("got %+v; want failover options", got)
			}
			w := tt.want
			if !slices.Equal(f.SentinelAddrs, w.sentinels) || f.MasterName != w.master || f.DB != w.db ||
				f.Username != w.user || f.Password != w.pass || f.SentinelUsername != w.sentinelUser ||
				f.SentinelPassword != w.sentinelPass || (f.TLSConfig != nil) != w.tls || f.DialTimeout != w.dialTimeout {
				t.Errorf("got sentinels %v master %q db %d user %q pass %q sentinel %q:%q tls %v dial %v; want %+v",
					f.SentinelAddrs, f.MasterName, f.DB, f.Username, f.Password, f.SentinelUsername, f.SentinelPassword,
					f.TLSConfig != nil, f.DialTimeout, *w)
			}
		})
	}
}

func TestParseRedisURLCluster(t *testing.T) {
	type want struct {
		addrs         []string
		user, pass    string
		tls           bool
		dialTimeout   time.Duration
		readTimeout   time.Duration
		routeRandomly bool
	}
	tests := []struct {
		name string
		url  string
		want want
		err  string
	}{
		{name: "three nodes", url: "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002/",
			want: want{addrs: []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}}},
		{name: "two nodes, no path", url: "redis+cluster://h1:7000,h2:7001",
			want: want{addrs: []string{"h1:7000", "h2:7001"}}},
		{name: "one node, db 0", url: "redis+cluster://h1:7000/0",
			want: want{addrs: []string{"h1:7000"}}},
		{name: "default port, IPv6", url: "redis+cluster://h1,h2:7001,[::1],[::1]:7002/",
			want: want{addrs: []string{"h1:6379", "h2:7001", "[::1]:6379", "[::1]:7002"}}},
		{name: "password", url: "redis+cluster://:s3cret@h1:7000,h2:7001/",
			want: want{addrs: []string{"h1:7000", "h2:7001"}, pass: "s3cret"}},
		{name: "ACL user, escaped password", url: "redis+cluster://app:p%40ss%3Aw@h1:7000,h2:7001/",
			want: want{addrs: []string{"h1:7000", "h2:7001"}, user: "app", pass: "p@ss:w"}},
		{name: "TLS", url: "rediss+cluster://:s3cret@h1:7000,h2:7001/",
			want: want{addrs: []string{"h1:7000", "h2:7001"}, pass: "s3cret", tls: true}},
		{name: "go-redis options", url: "redis+cluster://h1:7000,h2:7001/?dial_timeout=3s&read_timeout=1500ms&route_randomly=true",
			want: want{addrs: []string{"h1:7000", "h2:7001"}, dialTimeout: 3 * time.Second, readTimeout: 1500 * time.Millisecond, routeRandomly: true}},
		{name: "db 1", url: "redis+cluster://:hunter2@h1:7000,h2:7001/1", err: `database "1": Redis Cluster has only database 0`},
		{name: "db not a number", url: "redis+cluster://:hunter2@h1:7000/x", err: "Redis Cluster has only database 0"},
		{name: "no address", url: "redis+cluster://:hunter2@/", err: "no cluster node address"},
		{name: "no address, nothing else", url: "rediss+cluster://", err: "no cluster node address"},
		{name: "empty address in the list", url: "redis+cluster://:hunter2@h1:7000,,h2:7001/", err: `cluster node address ""`},
		{name: "port out of range", url: "redis+cluster://:hunter2@h1:99999,h2:7001/", err: `cluster node address "h1:99999"`},
		{name: "port not a number", url: "redis+cluster://:hunter2@h1:7000,h2:seven/", err: `cluster node address "h2:seven"`},
		{name: "empty port", url: "redis+cluster://:hunter2@h1:/", err: `cluster node address "h1:"`},
		{name: "addr in the query", url: "redis+cluster://:hunter2@h1:7000/?addr=h2:7001", err: "query parameter addr is not allowed"},
		{name: "password in the query", url: "redis+cluster://h1:7000/?password=hunter2", err: "query parameter password is not allowed"},
		{name: "username in the query", url: "redis+cluster://:hunter2@h1:7000/?username=app", err: "query parameter username is not allowed"},
		{name: "db in the query", url: "redis+cluster://:hunter2@h1:7000/?db=1", err: "query parameter db is not allowed"},
		{name: "unknown option", url: "redis+cluster://:hunter2@h1:7000/?colour=red", err: "unexpected option: colour"},
		{name: "bad option value", url: "redis+cluster://:hunter2@h1:7000/?dial_timeout=soon", err: "dial_timeout"},
		{name: "fragment", url: "redis+cluster://:hunter2@h1:7000/#x", err: "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRedisURL(t, tt.url, tt.err, "redis+cluster://[:password@]host1:6379,host2:6379/")
			if !ok {
				return
			}
			c := got.Cluster
			if c == nil || got.Server != nil || got.Failover != nil {
				t.Fatalf("got %+v; want cluster options only", got)
			}
			w := tt.want
			if !slices.Equal(c.Addrs, w.addrs) || c.Username != w.user || c.Password != w.pass ||
				(c.TLSConfig != nil) != w.tls || c.DialTimeout != w.dialTimeout || c.ReadTimeout != w.readTimeout ||
				c.RouteRandomly != w.routeRandomly {
				t.Errorf("got addrs %v user %q pass %q tls %v dial %v read %v random %v; want %+v",
					c.Addrs, c.Username, c.Password, c.TLSConfig != nil, c.DialTimeout, c.ReadTimeout, c.RouteRandomly, w)
			}
			if c.TLSConfig != nil && c.TLSConfig.ServerName != "" {
				t.Errorf("TLS ServerName = %q, want empty: each node is checked against its own host", c.TLSConfig.ServerName)
			}
		})
	}
}

// parseRedisURL parses url. With wantErr set, it checks that the error
// names REDIS_URL, form (the syntax of the URL form under test) and wantErr,
// and does not show the password hunter2, and returns false; otherwise any
// error fails the test.
func parseRedisURL(t *testing.T, url, wantErr, form string) (Redis, bool) {
	t.Helper()
	got, err := ParseRedisURL(url)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "REDIS_URL=") ||
			!strings.Contains(err.Error(), form) {
			t.Fatalf("got error %v; want one naming REDIS_URL, the forms and %q", err, wantErr)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows the password", err)
		}
		return Redis{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return got, true
}

func TestRedisNewClient(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{name: "one server", url: "redis://127.0.0.1:1/0"},
		{name: "sentinel", url: "redis+sentinel://127.0.0.1:1/m/0"},
		{name: "cluster", url: "redis+cluster://127.0.0.1:1,127.0.0.1:2/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRedisURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c := r.NewClient()
			defer c.Close()
			var timeouts bool
			switch c := c.(type) {
			case *redis.ClusterClient:
				if r.Cluster == nil {
					t.Fatalf("got a cluster client for %s", tt.url)
				}
				timeouts = c.Options().ContextTimeoutEnabled
				if !slices.Equal(c.Options().Addrs, r.Cluster.Addrs) {
					t.Errorf("client addrs %v, want %v", c.Options().Addrs, r.Cluster.Addrs)
				}
				if got := c.Options().ClusterStateReloadInterval; got != DefaultClusterStateReloadInterval {
					t.Errorf("ClusterStateReloadInterval = %v, want %v", got, DefaultClusterStateReloadInterval)
				}
			case *redis.Client:
				if r.Cluster != nil {
					t.Fatalf("got %T for %s, want a cluster client", c, tt.url)
				}
				timeouts = c.Options().ContextTimeoutEnabled
			default:
				t.Fatalf("got %T", c)
			}
			if !timeouts {
				t.Error("ContextTimeoutEnabled = false, want true")
			}
			if r.Cluster != nil && (r.Cluster.ContextTimeoutEnabled || r.Cluster.ClusterStateReloadInterval != 0) {
				t.Error("NewClient changed the parsed options, want a copy")
			}
		})
	}
}

func TestRedisNewClientKeepsClusterStateReloadInterval(t *testing.T) {
	r, err := ParseRedisURL("redis+cluster://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	r.Cluster.ClusterStateReloadInterval = 5 * time.Second
	c := r.NewClient().(*redis.ClusterClient)
	defer c.Close()
	if got := c.Options().ClusterStateReloadInterval; got != 5*time.Second {
		t.Errorf("ClusterStateReloadInterval = %v, want the 5s set", got)
	}
}

// TestClusterClientFollowsFailover kills the master of a key on a real
// Redis Cluster with a replica per master and checks that NewClient's
// cluster client writes the key again once the replica is promoted,
// without a MOVED to tell it so: the dead master answers nothing, and
// go-redis reloads its slot map only on a redirection or when the map is
// older than ClusterStateReloadInterval (its default: 60 s, far past the
// deadline here).
func TestClusterClientFollowsFailover(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartClusterWithReplicas(t, 3, 1)
	r, err := ParseRedisURL(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := r.NewClient().(*redis.ClusterClient)
	defer rdb.Close()
	ctx := t.Context()
	const key = "{a}k"
	if err := rdb.Set(ctx, key, "before", 0).Err(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
	master, err := rdb.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	victim := master.Options().Addr
	heir := cluster.ReplicasOf(t, victim)
	if len(heir) != 1 {
		t.Fatalf("ReplicasOf(%s) = %v, want one", victim, heir)
	}
	killed := time.Now()
	cluster.Kill(t, victim)

	node := redis.NewClient(&redis.Options{Addr: heir[0], MaxRetries: -1})
	defer node.Close()
	waitUntil(t, 30*time.Second, heir[0]+" promoted", func() bool {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		info, err := node.ClusterInfo(c).Result()
		repl, err2 := node.Info(c, "replication").Result()
		return err == nil && err2 == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(repl, "role:master")
	})
	promoted := time.Since(killed)
	var lastErr error
	waitUntil(t, 20*time.Second, "a SET through the cluster client after the promotion", func() bool {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		lastErr = rdb.Set(c, key, "after", 0).Err()
		return lastErr == nil
	}, func() string { return fmt.Sprintf("last error: %v", lastErr) })
	t.Logf("%s promoted %v after the SIGKILL of %s; the client wrote again %v after the promotion",
		heir[0], promoted.Round(time.Millisecond), victim, (time.Since(killed) - promoted).Round(time.Millisecond))
	if m, err := rdb.MasterForKey(ctx, key); err != nil || m.Options().Addr != heir[0] {
		t.Errorf("MasterForKey(%s) after the failover = %v, %v; want %s", key, m, err, heir[0])
	}
}

// waitUntil polls cond every 20ms until it is true, or fails the test
// once d has passed, with what and what more says.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, more ...func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			var details []string
			for _, f := range more {
				details = append(details, f())
			}
			t.Fatalf("timed out after %v waiting for %s %s", d, what, strings.Join(details, " "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReplicaWaitVariables(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantWait    int
		wantTimeout time.Duration
		err         string
	}{
		{name: "defaults", wantTimeout: time.Second},
		{name: "one replica, 0.5s", env: map[string]string{"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "0.5"}, wantWait: 1, wantTimeout: 500 * time.Millisecond},
		{name: "negative", env: map[string]string{"REDIS_WAIT_REPLICAS": "-1"}, wantTimeout: time.Second, err: `REDIS_WAIT_REPLICAS="-1": want a whole number from 0 to 100`},
		{name: "past the read timeout", env: map[string]string{"REDIS_WAIT_TIMEOUT": "5"}, wantTimeout: time.Second, err: `REDIS_WAIT_TIMEOUT="5": want a number of seconds from 0.01 to 2.5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(func(k string) string { return tt.env[k] })
			got := l.Jobs().Replicas
			err := l.Err()
			if got.Wait != tt.wantWait || got.Timeout != tt.wantTimeout {
				t.Errorf("got %+v; want wait %d, timeout %v", got, tt.wantWait, tt.wantTimeout)
			}
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got error %v; want %q", err, tt.err)
			}
		})
	}
}
