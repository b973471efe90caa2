package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/worker"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, w worker.Options)
		wantErr []string
	}{
		{name: "defaults", check: func(t *testing.T, w worker.Options) {
			if w.RedisURL != "redis://localhost:6379/0" || w.Addr != ":9200" ||
				w.HeartbeatInterval != 30*time.Second || w.HeartbeatTTL != 90*time.Second || w.HeartbeatStreamMaxLen != 10000 ||
				w.Concurrency != 1 || w.Queue != "default" || w.MaxAttempts != 3 || w.RetryBackoff != time.Second || w.VisibilityTimeout != 30*time.Second || w.ShutdownGrace != 30*time.Second || !strings.HasPrefix(w.ID, "worker-") {
				t.Errorf("got %+v", w)
			}
		}},
		{name: "decimal interval and derived TTL", env: map[string]string{"HEARTBEAT_INTERVAL": "1.5", "WORKER_ID": "worker-1", "METRICS_ADDR": "127.0.0.1", "METRICS_PORT": "9201"},
			check: func(t *testing.T, w worker.Options) {
				if w.HeartbeatInterval != 1500*time.Millisecond || w.HeartbeatTTL != 4500*time.Millisecond || w.ID != "worker-1" || w.Addr != "127.0.0.1:9201" {
					t.Errorf("got %+v", w)
				}
			}},
		{name: "TLS and password", env: map[string]string{"REDIS_URL": "rediss://:s3cret@redis.internal:6380/2"},
			check: func(t *testing.T, w worker.Options) {
				if w.RedisURL != "rediss://:s3cret@redis.internal:6380/2" {
					t.Errorf("got %q", w.RedisURL)
				}
			}},
		{name: "an interval of decades", env: map[string]string{"HEARTBEAT_INTERVAL": "1e9"},
			wantErr: []string{`HEARTBEAT_INTERVAL="1e9"`}},
		{name: "IPv6 listen address", env: map[string]string{"METRICS_ADDR": "::1"},
			check: func(t *testing.T, w worker.Options) {
				if w.Addr != "[::1]:9200" {
					t.Errorf("got %q", w.Addr)
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
			w, err := worker.FromEnv(env(tt.env))
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
