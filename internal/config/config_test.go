package config

import (
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestLoadWorker(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, w Worker)
		wantErr []string
	}{
		{name: "defaults", check: func(t *testing.T, w Worker) {
			if w.RedisURL != DefaultRedisURL || w.Redis.Addr != "localhost:6379" || w.MetricsAddr != ":9200" ||
				w.HeartbeatInterval != 30*time.Second || w.HeartbeatTTL != 90*time.Second || w.StreamMaxLen != 10000 ||
				w.Concurrency != 1 || w.Queue != "default" || w.MaxAttempts != 3 || w.RetryBackoff != time.Second || w.VisibilityTimeout != 30*time.Second || w.ShutdownGrace != 30*time.Second || !strings.HasPrefix(w.ID, "worker-") {
				t.Errorf("got %+v", w)
			}
		}},
		{name: "decimal interval and derived TTL", env: map[string]string{"HEARTBEAT_INTERVAL": "1.5", "WORKER_ID": "worker-1", "METRICS_ADDR": "127.0.0.1", "METRICS_PORT": "9201"},
			check: func(t *testing.T, w Worker) {
				if w.HeartbeatInterval != 1500*time.Millisecond || w.HeartbeatTTL != 4500*time.Millisecond || w.ID != "worker-1" || w.MetricsAddr != "127.0.0.1:9201" {
					t.Errorf("got %+v", w)
				}
			}},
		{name: "TLS and password", env: map[string]string{"REDIS_URL": "rediss://:s3cret@redis.internal:6380/2"},
			check: func(t *testing.T, w Worker) {
				if w.Redis.TLSConfig == nil || w.Redis.Password != "s3cret" || w.Redis.DB != 2 {
					t.Errorf("got %+v", w.Redis)
				}
			}},
		{name: "IPv6 listen address", env: map[string]string{"METRICS_ADDR": "::1"},
			check: func(t *testing.T, w Worker) {
				if w.MetricsAddr != "[::1]:9200" {
					t.Errorf("got %q", w.MetricsAddr)
				}
			}},
		{name: "every bad value named", env: map[string]string{
			"METRICS_PORT": "http", "HEARTBEAT_INTERVAL": "soon", "HEARTBEAT_STREAM_MAXLEN": "-1",
			"WORKER_ID": "worker 1", "WORKER_CONCURRENCY": "0", "METRICS_ADVERTISE_URL": "ftp://x", "JOB_QUEUE": "a b", "JOB_VISIBILITY_TIMEOUT": "0.1"},
			wantErr: []string{`METRICS_PORT="http"`, `HEARTBEAT_INTERVAL="soon"`, `HEARTBEAT_STREAM_MAXLEN="-1"`, `WORKER_ID="worker 1"`,
				`WORKER_CONCURRENCY="0"`, `METRICS_ADVERTISE_URL="ftp://x"`, `JOB_QUEUE="a b"`, `JOB_VISIBILITY_TIMEOUT="0.1"`}},
		{name: "TTL not above interval", env: map[string]string{"HEARTBEAT_INTERVAL": "10", "HEARTBEAT_TTL": "5"},
			wantErr: []string{`HEARTBEAT_TTL="5": want more seconds than HEARTBEAT_INTERVAL (10)`}},
		{name: "bad Redis URL keeps its password out of the error", env: map[string]string{"REDIS_URL": "mysql://:hunter2@db:3306"},
			wantErr: []string{"REDIS_URL=", "want redis://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := LoadWorker(env(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, w)
		})
	}
}

func TestAdvertisedMetricsURL(t *testing.T) {
	tests := []struct {
		name string
		p    Process
		want string
	}{
		{"explicit", Process{AdvertiseURL: "http://10.1.2.3:9200/metrics"}, "http://10.1.2.3:9200/metrics"},
		{"bound host", Process{MetricsAddr: "127.0.0.1:0"}, "http://127.0.0.1:9255/metrics"},
	}
	for _, tt := range tests {
		if got := tt.p.AdvertisedMetricsURL(9255); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := (Process{MetricsAddr: ":9200"}).AdvertisedMetricsURL(9200); !strings.HasPrefix(got, "http://") || strings.Contains(got, "http://:") {
		t.Errorf("all-interfaces address advertised as %q", got)
	}
}
