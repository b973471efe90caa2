package fleet_test

import (
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
)

const metricsHelp = `# HELP fleet_up 1 when the fleet could be read from Redis at this scrape, else 0.
# TYPE fleet_up gauge
# HELP fleet_workers Alive workers by state (every state is present, 0 when none).
# TYPE fleet_workers gauge
# HELP fleet_workers_alive Workers whose last heartbeat is at most 1.5 of their intervals old.
# TYPE fleet_workers_alive gauge
# HELP fleet_workers_stale Workers whose heartbeat is late beyond 1.5 intervals and whose hash has not expired yet.
# TYPE fleet_workers_stale gauge
# HELP fleet_workers_invalid Registered workers whose heartbeat hash does not follow the wire format.
# TYPE fleet_workers_invalid gauge
# HELP fleet_heartbeat_age_seconds Age of the workers' last heartbeats on Redis's clock, across alive and stale workers.
# TYPE fleet_heartbeat_age_seconds summary
# HELP fleet_targets_skipped Alive workers left out of Prometheus discovery (/api/fleet/targets) for a missing or unusable metrics_url.
# TYPE fleet_targets_skipped gauge
# HELP fleet_workers_quiet Alive workers an operator quieted: they finish their running jobs and take no new ones.
# TYPE fleet_workers_quiet gauge
`

func TestCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, srv *redistest.Server, now time.Time)
		want  string
	}{
		{
			name: "a fleet",
			setup: func(t *testing.T, srv *redistest.Server, now time.Time) {
				writeBeat(t, srv, beat{id: "a", at: now.Add(-time.Second)})
				writeBeat(t, srv, beat{id: "b", state: "BUSY", at: now.Add(-2 * time.Second)})
				writeBeat(t, srv, beat{id: "c", at: now.Add(-time.Minute)})
				srv.CLI(t, "", "HSET", heartbeat.KeyPrefix+"d", "worker_id", "d")
				srv.CLI(t, "", "ZADD", heartbeat.IndexKey, "1", "d")
			},
			want: `fleet_up 1
fleet_workers{state="BUSY"} 1
fleet_workers{state="IDLE"} 1
fleet_workers{state="STARTING"} 0
fleet_workers{state="STOPPED"} 0
fleet_workers{state="STOPPING"} 0
fleet_workers_alive 2
fleet_workers_stale 1
fleet_workers_invalid 1
fleet_heartbeat_age_seconds{quantile="0.5"} 2
fleet_heartbeat_age_seconds{quantile="0.9"} 60
fleet_heartbeat_age_seconds{quantile="0.99"} 60
fleet_heartbeat_age_seconds{quantile="1"} 60
fleet_heartbeat_age_seconds_sum 63
fleet_heartbeat_age_seconds_count 3
fleet_targets_skipped 0
fleet_workers_quiet 0
`,
		},
		{
			// NoIdleWorkers needs fleet_workers{state="IDLE"} 0, not nothing.
			name:  "no worker",
			setup: func(*testing.T, *redistest.Server, time.Time) {},
			want: `fleet_up 1
fleet_workers{state="BUSY"} 0
fleet_workers{state="IDLE"} 0
fleet_workers{state="STARTING"} 0
fleet_workers{state="STOPPED"} 0
fleet_workers{state="STOPPING"} 0
fleet_workers_alive 0
fleet_workers_stale 0
fleet_workers_invalid 0
fleet_heartbeat_age_seconds{quantile="0.5"} NaN
fleet_heartbeat_age_seconds{quantile="0.9"} NaN
fleet_heartbeat_age_seconds{quantile="0.99"} NaN
fleet_heartbeat_age_seconds{quantile="1"} NaN
fleet_heartbeat_age_seconds_sum 0
fleet_heartbeat_age_seconds_count 0
fleet_targets_skipped 0
fleet_workers_quiet 0
`,
		},
		{
			name:  "Redis down",
			setup: func(t *testing.T, srv *redistest.Server, _ time.Time) { srv.Stop(t) },
			want:  "fleet_up 0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			rdb := noRetryClient(t, srv)
			now := redisNow(t, rdb).Truncate(time.Millisecond)
			tt.setup(t, srv, now)
			c := fleet.NewCollector(fleet.NewReader(rdb, fleet.Options{Now: func() time.Time { return now }}))
			if err := testutil.CollectAndCompare(c, strings.NewReader(metricsHelp+tt.want)); err != nil {
				t.Error(err)
			}
			if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %v", problems, err)
			}
			promtoolCheck(t, c)
		})
	}
}

// promtoolCheck serves c from a fresh registry and runs `promtool check
// metrics` on what a scrape gets.
func promtoolCheck(t *testing.T, c prometheus.Collector) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found: install the Debian package prometheus (apt-get install prometheus): %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(rec.Body.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, rec.Body.String())
	}
}
