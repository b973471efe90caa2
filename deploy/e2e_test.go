package deploy

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/testbin"
)

// The local fleet runs at 1/30 of the compose stack's time scale: workers
// beat every 1 s (30 s there), Prometheus scrapes every job and evaluates
// the rules every 1 s (bot-main 30 s and rules 15 s there). Not the 0.5 s
// beat of the other end-to-end tests: a killed worker is stale from 1.5 to
// 3 intervals after its last beat (HEARTBEAT_TTL), and WorkerHeartbeatStale
// sees it only if a scrape of the bot lands in that window. At 0.5 s the
// window (0.75 s) is shorter than a 1 s scrape and the alert would be
// missed at random; at 1 s it is 1.5 s, the ratio of the compose stack's
// 45 s window to bot-main's 30 s.
const (
	e2eHeartbeat = "1"
	e2eInterval  = "1s"
	// e2eBudget bounds the whole test; every wait is cut to what is left.
	e2eBudget = 80 * time.Second
	// The processes' deployment labels, which the dashboard variables offer.
	e2eEnv    = "e2e"
	e2eRegion = "local-1"
	// composeBot is the bot's address in the compose network, the one
	// host prometheus.yml names.
	composeBot = "bot:9200"
)

// designQueries are the design's example queries, run as written.
var designQueries = []string{
	"worker_state",
	"worker_memory_bytes / 1024 / 1024",
	"rate(worker_jobs_processed_total[5m])",
	"rate(worker_jobs_failed_total[5m]) / rate(worker_jobs_processed_total[5m])",
}

// TestPrometheusE2E runs the real prometheus on the shipped prometheus.yml
// and rules, pointed at a locally started bot and workers, and checks
// through Prometheus's HTTP API what the compose stack relies on: fleet
// discovery finds the workers, every scrape passes the bearer token, every
// PromQL query of the dashboard and of the design returns data, and the
// alerts for a killed and for an unscrapable worker become active.
func TestPrometheusE2E(t *testing.T) {
	t.Parallel()
	requireTool(t, "prometheus", promtoolPackage) // before anything starts
	built := time.Now()
	testbin.Path(t) // go build, before the clock starts: it is slow on a busy machine
	t.Logf("botfleet built in %.1fs", time.Since(built).Seconds())
	e := &e2e{t: t, start: time.Now(), deadline: time.Now().Add(e2eBudget), workers: map[string]*testbin.Proc{}}
	e.last = e.start
	e.client.Timeout = 5 * time.Second
	e.startFleet("e2e-worker-a", "e2e-worker-b")
	e.startPrometheus()
	e.lap("fleet and prometheus started")

	if !t.Run("every target is up", e.targetsUp) {
		t.FailNow() // nothing else can work
	}
	t.Run("the shipped rules load and evaluate", e.rulesHealthy)
	e.runJobs()
	stop := e.trickle()
	e.lap("first jobs done")
	t.Run("dashboard and design queries return data", e.dashboardQueries)
	t.Run("the per-frontend panel shows every frontend", e.frontendPanel)
	t.Run("the design's telegram_bot LogQL example finds the bot's lines", e.chatLogQL)
	t.Run("dashboard variables list the fleet and filter it", e.dashboardVariables)
	stop()
	e.lap("queries answered")
	t.Run("kill -9 of a worker fires WorkerHeartbeatStale", e.killedWorker)
	e.lap("killed worker alerted")
	t.Run("a worker that beats but refuses scrapes makes WorkerDown pending", e.unscrapableWorker)
	e.lap("unscrapable worker alerted")
}

// e2e is one run of TestPrometheusE2E: its processes and HTTP clients.
type e2e struct {
	t                     *testing.T
	start, last, deadline time.Time
	client                http.Client

	token   string   // METRICS_AUTH_TOKEN of the fleet and Prometheus
	env     []string // environment of the bot and the workers
	botURL  string
	bot     *testbin.Proc
	chat    *chatPlatforms // the chat frontends' platforms
	workers map[string]*testbin.Proc
	prom    string // Prometheus's base URL
}

// lap logs how long the test has taken so far.
func (e *e2e) lap(what string) {
	now := time.Now()
	e.t.Logf("%-30s at %5.1fs (+%.1fs)", what, now.Sub(e.start).Seconds(), now.Sub(e.last).Seconds())
	e.last = now
}

func (e *e2e) targetsUp(t *testing.T) {
	want := slices.Sorted(func(yield func(string) bool) {
		for id := range e.workers {
			yield(id)
		}
	})
	e.waitFor(t, 20*time.Second, "bot-main and every worker to be scraped", func() (bool, string) {
		targets, err := e.targets()
		if err != nil {
			return false, err.Error()
		}
		// The docker job has no targets: there is no Docker here.
		var workers []string
		botUp, allUp := 0, true
		for _, tg := range targets {
			allUp = allUp && tg.Health == "up"
			switch tg.ScrapePool {
			case "bot-main":
				botUp++
			case "bot-workers":
				workers = append(workers, tg.Labels["worker_id"])
			}
		}
		slices.Sort(workers)
		ok := allUp && botUp == 1 && slices.Equal(workers, want) && len(targets) == 1+len(want)
		return ok, fmt.Sprintf("want bot-main and workers %v, all up; have %+v", want, targets)
	})
}

func (e *e2e) rulesHealthy(t *testing.T) {
	var shipped ruleFile
	decodeYAMLFile(t, filepath.Join(deployDir(t), "prometheus", "rules", "botfleet.yml"), &shipped)
	var want []string
	for _, g := range shipped.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				want = append(want, r.Alert+" ok")
			}
		}
	}
	slices.Sort(want)
	e.waitFor(t, 10*time.Second, "every shipped alert to be evaluated without error", func() (bool, string) {
		var data struct {
			Groups []struct {
				Rules []struct{ Name, Health, LastError string }
			}
		}
		if err := e.api("/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
			return false, err.Error()
		}
		var got []string
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				got = append(got, r.Name+" "+r.Health+r.LastError)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("got %q, want %q", got, want)
	})
}

// dashboardQueries runs every PromQL query of the dashboards (panels,
// annotations, the variables' selectors) with the variables at All, as
// Grafana sends them (their allValue ".*"; $__rate_interval 5m), and the
// design's example queries. Each must parse and return a number. The
// exception: queries on ALERTS (the firing-alerts annotation) have data
// only while an alert fires; killedWorker runs them once one does.
func (e *e2e) dashboardQueries(t *testing.T) {
	qs, _ := e.dashboardPromQL(t, substituteVars)
	for _, q := range designQueries {
		qs = append(qs, namedQuery{"design example", q})
	}
	e.requireData(t, qs, 30*time.Second)
}

// dashboardVariables checks that each variable's label_values() lists the
// fleet's values, and that every query returns data with one environment,
// region and worker selected instead of All.
func (e *e2e) dashboardVariables(t *testing.T) {
	want := map[string][]string{"deployment_env": {e2eEnv}, "region": {e2eRegion}, "worker_id": slices.Sorted(func(yield func(string) bool) {
		for id := range e.workers {
			yield(id)
		}
	})}
	for _, d := range loadDashboards(t) {
		for _, v := range d.Templating.List {
			m := labelValues.FindStringSubmatch(v.Definition)
			if m == nil {
				continue // TestDashboardFromDesign reports it
			}
			var got []string
			if err := e.api("/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {substituteVars(m[1])}}, &got); err != nil {
				t.Errorf("variable %s: %s: %v", v.Name, v.Definition, err)
			} else if !slices.Equal(got, want[m[2]]) {
				t.Errorf("variable %s: %s = %q, want %q", v.Name, v.Definition, got, want[m[2]])
			}
		}
	}
	// The worker that ran the most jobs, so its job panels have data.
	busiest, err := e.query("topk(1, rate(worker_jobs_processed_total[5m]))")
	if err != nil || len(busiest) != 1 {
		t.Fatalf("the busiest worker: %v %v", busiest, err)
	}
	picked := map[string]string{"deployment_env": e2eEnv, "region": e2eRegion, "worker": busiest[0].Metric["worker_id"]}
	qs, _ := e.dashboardPromQL(t, func(expr string) string {
		return substituteVars(grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
			name, _, _ := strings.Cut(strings.Trim(m, "${}"), ":")
			if v, ok := picked[name]; ok {
				return v // plain words: nothing for Grafana to regex-escape
			}
			return m
		}))
	})
	e.requireData(t, qs, 20*time.Second)
}

func (e *e2e) killedWorker(t *testing.T) {
	victim := "e2e-worker-a"
	p := e.workers[victim]
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t, 5*time.Second)
	delete(e.workers, victim)
	killed := time.Now()

	// The shipped alert for a crashed worker. WorkerDown is not (see
	// botfleet.yml): the bot's discovery drops a stale worker from the
	// targets, so that up == 0 means a live worker that cannot be scraped.
	e.waitFor(t, 20*time.Second, "WorkerHeartbeatStale to fire", func() (bool, string) {
		a, all := e.alert("WorkerHeartbeatStale", nil)
		return a != nil && a.State == "firing", all
	})
	t.Logf("WorkerHeartbeatStale firing %.1fs after kill -9", time.Since(killed).Seconds())
	// Stale after 1.5 s, seen by the next 1 s refresh, applied by
	// Prometheus's discovery and scrape managers on 5 s ticks each.
	e.waitFor(t, 20*time.Second, "the killed worker to leave the bot-workers targets", func() (bool, string) {
		targets, err := e.targets()
		return err == nil && !slices.ContainsFunc(targets, func(tg promTarget) bool { return tg.Labels["worker_id"] == victim }),
			fmt.Sprintf("%+v %v", targets, err)
	})
	_, alertQueries := e.dashboardPromQL(t, substituteVars)
	e.requireData(t, alertQueries, 10*time.Second)

	// Until the target is gone Prometheus still scrapes the dead address,
	// so WorkerDown is usually pending for a few seconds; its for: keeps
	// it from firing (not asserted: whether a failed scrape and an
	// evaluation land before the removal is up to the timers).
	samples, err := e.query(fmt.Sprintf(`count_over_time(ALERTS{alertname="WorkerDown", worker_id=%q}[1m])`, victim))
	t.Logf("WorkerDown evaluations for the killed worker in the last minute: %v %v", samples, err)
}

func (e *e2e) unscrapableWorker(t *testing.T) {
	id := "e2e-worker-wrong-token"
	env := slices.DeleteFunc(slices.Clone(e.env), func(kv string) bool { return strings.HasPrefix(kv, "METRICS_AUTH_TOKEN=") })
	_, e.workers[id] = e.startProcess(t, append(env, "METRICS_AUTH_TOKEN="+randomToken(t), "WORKER_ID="+id), "worker")
	started := time.Now()
	e.waitFor(t, 20*time.Second, "WorkerDown to be pending for "+id, func() (bool, string) {
		a, all := e.alert("WorkerDown", map[string]string{"worker_id": id})
		return a != nil && a.State == "pending", all
	})
	t.Logf("WorkerDown pending %.1fs after the worker started", time.Since(started).Seconds())
	targets, err := e.targets()
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Labels["worker_id"] == id && (tg.Health != "down" || !strings.Contains(tg.LastError, "401")) {
			t.Errorf("target of %s: health %q, last error %q; want down with 401 Unauthorized", id, tg.Health, tg.LastError)
		}
	}
	if a, all := e.alert("MetricsEndpointDown", nil); a != nil {
		t.Errorf("MetricsEndpointDown is active, but the bot is up: %s", all)
	}
}

// namedQuery is a PromQL query and where it comes from.
type namedQuery struct{ where, expr string }

// dashboardPromQL returns the PromQL queries of the dashboards with their
// variables expanded, those on ALERTS apart.
func (e *e2e) dashboardPromQL(t *testing.T, expand func(string) string) (qs, onAlerts []namedQuery) {
	t.Helper()
	uids := provisionedDatasources(t)
	for file, d := range loadDashboards(t) {
		for _, q := range queries(t, d, uids) {
			if q.dsType != "prometheus" {
				continue
			}
			nq := namedQuery{file + " " + q.where, expand(q.expr)}
			if slices.Contains(metricNames(q.expr), "ALERTS") {
				onAlerts = append(onAlerts, nq)
			} else {
				qs = append(qs, nq)
			}
		}
	}
	if len(qs) == 0 {
		t.Fatal("no PromQL queries in the dashboards")
	}
	return qs, onAlerts
}

// requireData polls qs until each has returned a sample that is a number
// (NaN draws nothing on a panel). A query Prometheus rejects fails at once.
func (e *e2e) requireData(t *testing.T, qs []namedQuery, within time.Duration) {
	t.Helper()
	last := map[string]string{}
	e.waitFor(t, within, fmt.Sprintf("%d queries to return data", len(qs)), func() (bool, string) {
		qs = slices.DeleteFunc(qs, func(q namedQuery) bool {
			samples, err := e.query(q.expr)
			var bad *promError
			if errors.As(err, &bad) && bad.Type == "bad_data" {
				t.Errorf("%s: Prometheus rejects %s: %s", q.where, q.expr, bad.Msg)
				return true
			}
			if err == nil && slices.ContainsFunc(samples, func(s promSample) bool { return !math.IsNaN(s.number()) }) {
				return true
			}
			last[q.where] = fmt.Sprintf("%v %v", samples, err)
			return false
		})
		var b strings.Builder
		fmt.Fprintf(&b, "%d still without data:", len(qs))
		for _, q := range qs {
			fmt.Fprintf(&b, "\n  %s: %s\n    last result: %s", q.where, q.expr, last[q.where])
		}
		return len(qs) == 0, b.String()
	})
}

// waitFor polls cond until it holds, for at most d and never past the
// test's budget; on timeout it fails with cond's last detail.
func (e *e2e) waitFor(t *testing.T, d time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	start, deadline, budget := time.Now(), time.Now().Add(d), ""
	if deadline.After(e.deadline) {
		deadline, budget = e.deadline, fmt.Sprintf(" (the test's %v budget is spent)", e2eBudget)
	}
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %.1fs%s waiting for %s: %s", time.Since(start).Seconds(), budget, what, detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
