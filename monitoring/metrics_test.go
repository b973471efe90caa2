package monitoring

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeBeats stands in for the heartbeat writer.
type fakeBeats struct {
	failures atomic.Uint64
	last     atomic.Int64 // Unix nanoseconds
}

func (f *fakeBeats) Failures() uint64 { return f.failures.Load() }

func (f *fakeBeats) LastSuccess() time.Time {
	if n := f.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

var testIdentity = Identity{
	WorkerID: "worker-1", Hostname: "bot-server-01", ContainerID: "a1b2c3",
	DeploymentEnv: "production", Region: "us-west-1", Version: "1.2.3",
}

// identityLabels is testIdentity as the exposition format writes it.
const identityLabels = `container_id="a1b2c3",deployment_env="production",hostname="bot-server-01",region="us-west-1",worker_id="worker-1"`

var workerMetricNames = []string{
	"worker_state", "worker_memory_bytes", "worker_cpu_percent", "worker_uptime_seconds",
	"worker_threads", "worker_open_fds", "worker_jobs_processed_total", "worker_jobs_failed_total",
	"worker_jobs_dead_lettered_total", "worker_job_duration_seconds", "worker_heartbeat_failures_total",
	"worker_last_heartbeat_timestamp_seconds", "worker_info",
}

// TestMetricsScrape scrapes a real server and checks the body with
// promtool and for every worker_* metric with the five identity labels.
func TestMetricsScrape(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install the Debian package prometheus (apt-get install prometheus)", err)
	}
	w := workerIn(t, StateIdle)
	reg := NewRegistry()
	beats := &fakeBeats{}
	beats.last.Store(time.Now().UnixNano())
	if err := RegisterWorkerMetrics(reg, w, fakeSampler(t), testIdentity, beats); err != nil {
		t.Fatal(err)
	}
	w.JobStarted("job-1", "scrape")
	w.JobFinished("job-1", "scrape", 1500*time.Millisecond, nil)
	s := startServer(t, ServerOptions{Gatherer: reg, AuthToken: testToken})

	got := do(t, "GET", s.URL()+"/metrics", "Bearer "+testToken)
	if got.code != 200 {
		t.Fatalf("GET /metrics: %d %s", got.code, got.body)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(got.body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	for _, name := range workerMetricNames {
		lines := sampleLines(got.body, name)
		if len(lines) == 0 {
			t.Errorf("no %s samples in the scrape", name)
		}
		for _, line := range lines {
			labels := lineLabels(line)
			for k, want := range prometheus.Labels(testIdentity.Labels()) {
				if got, ok := labels[k]; !ok || got != want {
					t.Errorf("%s: label %s = %q, want %q", line, k, got, want)
				}
			}
		}
		if !strings.Contains(got.body, "# HELP "+name+" ") {
			t.Errorf("%s has no HELP", name)
		}
	}
	for _, prefix := range []string{"process_cpu_seconds_total", "go_goroutines"} {
		if len(sampleLines(got.body, prefix)) == 0 {
			t.Errorf("no %s: want the standard collectors", prefix)
		}
	}
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// lineLabels returns the labels of a sample line.
func lineLabels(line string) map[string]string {
	labels := map[string]string{}
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return labels
	}
	for _, m := range labelPair.FindAllStringSubmatch(line[open+1:end], -1) {
		labels[m[1]] = m[2]
	}
	return labels
}

// sampleLines returns the sample lines of the metric family name (with its
// _bucket, _sum and _count series).
func sampleLines(body, name string) []string {
	var out []string
	for line := range strings.Lines(body) {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if strings.HasPrefix(line, name+suffix+"{") || strings.HasPrefix(line, name+suffix+" ") {
				out = append(out, strings.TrimSpace(line))
			}
		}
	}
	return out
}

func TestMetricsValues(t *testing.T) {
	clock := newClock()
	w := NewWorker("worker-1", clock.Now)
	reg := prometheus.NewRegistry()
	beats := &fakeBeats{}
	beats.failures.Store(3)
	beats.last.Store(time.Unix(1688851200, 500e6).UnixNano())
	sampler := fakeSampler(t)
	if err := RegisterWorkerMetrics(reg, w, sampler, testIdentity, beats); err != nil {
		t.Fatal(err)
	}
	must(t, w.SetState(StateIdle))
	w.JobStarted("a", "scrape")
	w.JobFinished("a", "scrape", time.Second, nil)
	w.JobStarted("b", "scrape")
	w.JobFinished("b", "scrape", time.Second, errors.New("boom"))
	w.JobDead()                 // b's last attempt: dead-lettered
	w.JobStarted("c", "render") // still running: BUSY
	clock.Advance(42 * time.Second)

	l := "{" + identityLabels + "}"
	want := fmt.Sprintf(`# HELP worker_heartbeat_failures_total Heartbeats that failed to reach Redis.
# TYPE worker_heartbeat_failures_total counter
worker_heartbeat_failures_total%[1]s 3
# HELP worker_info Worker identity and build; always 1.
# TYPE worker_info gauge
worker_info{container_id="a1b2c3",deployment_env="production",go_version=%[2]q,hostname="bot-server-01",region="us-west-1",version="1.2.3",worker_id="worker-1"} 1
# HELP worker_jobs_dead_lettered_total Jobs whose last attempt failed on this worker and that went to the dead-letter stream: jobs that failed for good.
# TYPE worker_jobs_dead_lettered_total counter
worker_jobs_dead_lettered_total%[1]s 1
# HELP worker_jobs_failed_total Job attempts the worker finished with an error, retried or not; worker_jobs_dead_lettered_total counts the jobs that failed for good.
# TYPE worker_jobs_failed_total counter
worker_jobs_failed_total%[1]s 1
# HELP worker_jobs_processed_total Job attempts the worker finished, failed or not (a job retried three times counts three).
# TYPE worker_jobs_processed_total counter
worker_jobs_processed_total%[1]s 2
# HELP worker_last_heartbeat_timestamp_seconds Unix time of the last heartbeat that reached Redis; 0 if none has.
# TYPE worker_last_heartbeat_timestamp_seconds gauge
worker_last_heartbeat_timestamp_seconds%[1]s 1.6888512005e+09
# HELP worker_memory_bytes Resident memory (RSS) of the worker process in bytes.
# TYPE worker_memory_bytes gauge
worker_memory_bytes%[1]s 2.68435456e+08
# HELP worker_open_fds Open file descriptors of the worker process.
# TYPE worker_open_fds gauge
worker_open_fds%[1]s 9
# HELP worker_state Current state of the worker: 0 STARTING, 1 IDLE, 2 BUSY, 3 STOPPING, 4 STOPPED.
# TYPE worker_state gauge
worker_state%[1]s 2
# HELP worker_threads OS threads of the worker process.
# TYPE worker_threads gauge
worker_threads%[1]s 12
# HELP worker_uptime_seconds Seconds since the worker started.
# TYPE worker_uptime_seconds gauge
worker_uptime_seconds%[1]s 42
`, l, runtime.Version())
	names := []string{
		"worker_heartbeat_failures_total", "worker_info", "worker_jobs_dead_lettered_total", "worker_jobs_failed_total", "worker_jobs_processed_total",
		"worker_last_heartbeat_timestamp_seconds", "worker_memory_bytes", "worker_open_fds", "worker_state",
		"worker_threads", "worker_uptime_seconds",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestMetricsWithoutHeartbeatOrSampler(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterWorkerMetrics(reg, workerIn(t, StateIdle), nil, Identity{}, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{
		"worker_heartbeat_failures_total": 1, "worker_last_heartbeat_timestamp_seconds": 1,
		"worker_state": 1, "worker_memory_bytes": 0, "worker_cpu_percent": 0,
	} {
		if got := testutil.CollectAndCount(reg, name); got != want {
			t.Errorf("%s: %d series, want %d", name, got, want)
		}
	}
	want := `# HELP worker_last_heartbeat_timestamp_seconds Unix time of the last heartbeat that reached Redis; 0 if none has.
# TYPE worker_last_heartbeat_timestamp_seconds gauge
worker_last_heartbeat_timestamp_seconds{container_id="",deployment_env="",hostname="",region="",worker_id=""} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "worker_last_heartbeat_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func TestJobDurationHistogram(t *testing.T) {
	w := workerIn(t, StateIdle)
	w.JobFinished("before-registration", "scrape", time.Hour, nil) // not observed: no histogram yet
	reg := prometheus.NewRegistry()
	if err := RegisterWorkerMetrics(reg, w, nil, testIdentity, nil); err != nil {
		t.Fatal(err)
	}
	jobs := []struct {
		id, typ string
		took    time.Duration
		err     error
	}{
		{"job-1", "scrape", 3 * time.Millisecond, nil},
		{"job-2", "scrape", 2 * time.Second, errors.New("timeout")},
		{"job-3", "render", 4 * time.Minute, nil},
	}
	for _, j := range jobs {
		w.JobStarted(j.id, j.typ)
		w.JobFinished(j.id, j.typ, j.took, j.err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type hist struct {
		count  uint64
		sum    float64
		labels string
	}
	got := map[string]hist{}
	for _, f := range families {
		if f.GetName() != "worker_job_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			var typ string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName())
				if lp.GetName() == "type" {
					typ = lp.GetValue()
				}
			}
			h := m.GetHistogram()
			got[typ] = hist{h.GetSampleCount(), h.GetSampleSum(), strings.Join(labels, ",")}
			if b := h.GetBucket(); b[0].GetUpperBound() != 0.005 || b[len(b)-1].GetUpperBound() != 300 {
				t.Errorf("buckets from %v to %v, want 0.005 to 300", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
			}
		}
	}
	const labels = "container_id,deployment_env,hostname,region,type,worker_id"
	want := map[string]hist{
		"scrape": {2, 2.003, labels},
		"render": {1, 240, labels},
	}
	if len(got) != len(want) {
		t.Errorf("histogram series %v, want %v", got, want)
	}
	for typ, w := range want {
		g := got[typ]
		if g.count != w.count || g.labels != w.labels || g.sum < w.sum-1e-9 || g.sum > w.sum+1e-9 {
			t.Errorf("type %s: %+v, want %+v", typ, g, w)
		}
	}
}

// TestJobAttemptsByType counts finished attempts by job type and outcome.
func TestJobAttemptsByType(t *testing.T) {
	w := workerIn(t, StateIdle)
	reg := prometheus.NewRegistry()
	must(t, RegisterWorkerMetrics(reg, w, nil, testIdentity, nil))
	for i, j := range []struct {
		typ string
		err error
	}{{"scrape", nil}, {"scrape", errors.New("timeout")}, {"scrape", nil}, {"render", errors.New("boom")}} {
		id := fmt.Sprint("job-", i)
		w.JobStarted(id, j.typ)
		w.JobFinished(id, j.typ, time.Millisecond, j.err)
	}
	want := `# HELP worker_job_attempts_total Job attempts the worker finished, by job type and outcome (succeeded or failed).
# TYPE worker_job_attempts_total counter
worker_job_attempts_total{container_id="a1b2c3",deployment_env="production",hostname="bot-server-01",outcome="failed",region="us-west-1",type="render",worker_id="worker-1"} 1
worker_job_attempts_total{container_id="a1b2c3",deployment_env="production",hostname="bot-server-01",outcome="failed",region="us-west-1",type="scrape",worker_id="worker-1"} 1
worker_job_attempts_total{container_id="a1b2c3",deployment_env="production",hostname="bot-server-01",outcome="succeeded",region="us-west-1",type="scrape",worker_id="worker-1"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "worker_job_attempts_total"); err != nil {
		t.Error(err)
	}
}

func TestRegisterWorkerMetricsErrors(t *testing.T) {
	if err := RegisterWorkerMetrics(prometheus.NewRegistry(), nil, nil, Identity{}, nil); err == nil {
		t.Error("nil Worker accepted, want an error")
	}

	reg := prometheus.NewRegistry()
	w := workerIn(t, StateIdle)
	must(t, RegisterWorkerMetrics(reg, w, nil, testIdentity, nil))
	if err := RegisterWorkerMetrics(reg, w, nil, testIdentity, nil); err == nil {
		t.Error("second registration in the same registry succeeded, want an error")
	}

	// A clash on the histogram rolls back the collector.
	reg = prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "worker_job_duration_seconds", Help: "clash", ConstLabels: prometheus.Labels(testIdentity.Labels()),
	}))
	if err := RegisterWorkerMetrics(reg, workerIn(t, StateIdle), nil, testIdentity, nil); err == nil {
		t.Fatal("clashing histogram accepted, want an error")
	}
	if n := testutil.CollectAndCount(reg, "worker_state"); n != 0 {
		t.Errorf("worker_state still registered after a failed registration (%d series)", n)
	}
}

func TestNewRegistry(t *testing.T) {
	reg := NewRegistry()
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if n := testutil.CollectAndCount(reg, name); n != 1 {
			t.Errorf("%s: %d series, want 1", name, n)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
