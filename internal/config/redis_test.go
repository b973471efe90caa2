package config

import (
	"slices"
	"strings"
	"testing"
	"time"
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
			got, err := ParseRedisURL(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "REDIS_URL=") ||
					!strings.Contains(err.Error(), "redis+sentinel://") {
					t.Fatalf("got error %v; want one naming REDIS_URL, the forms and %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if got.Server == nil || got.Failover != nil {
					t.Fatalf("got %+v; want one server's options", got)
				}
				return
			}
			f := got.Failover
			if f == nil || got.Server != nil {
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
