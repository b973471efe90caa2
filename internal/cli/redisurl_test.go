package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/testbin"
)

// TestBadSentinelURL checks that every command that opens Redis refuses a
// malformed Sentinel REDIS_URL at start, with exit 2, naming REDIS_URL and
// the forms allowed, without showing the password.
func TestBadSentinelURL(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "worker", args: []string{"worker"}},
		{name: "bot", args: []string{"bot"}},
		{name: "status", args: []string{"status"}},
		{name: "up", args: []string{"up", "-workers", "0", "-load", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testbin.Start(t, []string{"REDIS_URL=redis+sentinel://:hunter2@127.0.0.1:1/", "METRICS_PORT=0"}, tt.args...)
			code := p.Wait(t, 15*time.Second)
			out := p.Output()
			if code != 2 {
				t.Errorf("exit code %d, want 2:\n%s", code, out)
			}
			for _, want := range []string{"REDIS_URL=", "redis+sentinel://[:password@]host1:26379", "no master name"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("output shows the password:\n%s", out)
			}
		})
	}
}
