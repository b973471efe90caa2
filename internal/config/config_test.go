package config

import (
	"strings"
	"testing"
)

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
		if got := AdvertisedMetricsURL(tt.p.AdvertiseURL, tt.p.MetricsAddr, 9255); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := AdvertisedMetricsURL("", ":9200", 9200); !strings.HasPrefix(got, "http://") || strings.Contains(got, "http://:") {
		t.Errorf("all-interfaces address advertised as %q", got)
	}
}

func TestLoaderBounds(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // "" for none
	}{
		{name: "an IP address", env: map[string]string{"METRICS_ADDR": "10.0.0.5"}},
		{name: "a host name", env: map[string]string{"METRICS_ADDR": "metrics.internal"}},
		{name: "not an IP address", env: map[string]string{"METRICS_ADDR": "999.1.1.1"}, wantErr: `METRICS_ADDR="999.1.1.1"`},
		{name: "a port in the address", env: map[string]string{"METRICS_ADDR": "127.0.0.1:9200"}, wantErr: `METRICS_ADDR="127.0.0.1:9200"`},
		{name: "a retry backoff of a day", env: map[string]string{"JOB_RETRY_BACKOFF": "86400"}, wantErr: `JOB_RETRY_BACKOFF="86400"`},
		{name: "NaN", env: map[string]string{"JOB_VISIBILITY_TIMEOUT": "NaN"}, wantErr: `JOB_VISIBILITY_TIMEOUT="NaN"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(env(tt.env))
			l.Process()
			l.Jobs()
			err := l.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), `METRICS_PORT="`):
				t.Errorf("error %v blames METRICS_PORT", err)
			}
		})
	}
}
