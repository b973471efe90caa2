package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/promtest"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// Starting the processes of TestPrometheusE2E: redis-server, the bot, the
// workers, and prometheus on a local copy of the shipped configuration.

func (e *e2e) startFleet(workers ...string) {
	t := e.t
	t.Helper()
	srv := redistest.Start(t)
	e.token = randomToken(t)
	e.env = []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_AUTH_TOKEN=" + e.token,
		"HEARTBEAT_INTERVAL=" + e2eHeartbeat, "LOG_DIR=" + t.TempDir(), "JOB_RETRY_BACKOFF=0.1",
		"DEPLOYMENT_ENV=" + e2eEnv, "REGION=" + e2eRegion}
	addr, bot := e.startProcess(t, append(slices.Clip(e.env), e.chatEnv()...), "bot")
	e.botURL, e.bot = "http://"+addr, bot
	for _, id := range workers {
		_, e.workers[id] = e.startProcess(t, append(slices.Clip(e.env), "WORKER_ID="+id), "worker")
	}
}

// startProcess runs botfleet with args on a free port and returns its
// address once /livez (open, no token) answers.
func (e *e2e) startProcess(t *testing.T, env []string, args ...string) (string, *testbin.Proc) {
	t.Helper()
	port := strconv.Itoa(testbin.FreePort(t))
	p := testbin.Start(t, append(slices.Clip(env), "METRICS_PORT="+port), args...)
	addr := net.JoinHostPort("127.0.0.1", port)
	e.waitFor(t, 15*time.Second, fmt.Sprintf("botfleet %v to answer /livez", args), func() (bool, string) {
		select {
		case <-p.Done():
			t.Fatalf("botfleet %v exited:\n%s", args, p.Output())
		default:
		}
		code, body, err := e.do(http.MethodGet, "http://"+addr+"/livez", "", nil)
		return code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
	})
	return addr, p
}

// startPrometheus runs prometheus on a copy of deploy/prometheus, with the
// token file the compose stack writes and prometheus.yml made local.
func (e *e2e) startPrometheus() {
	t := e.t
	t.Helper()
	dir := t.TempDir()
	copyDir(t, filepath.Join(deployDir(t), "prometheus"), dir)
	tokenFile := filepath.Join(dir, credentialsFile)
	if err := os.MkdirAll(filepath.Dir(tokenFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(e.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	decodeYAMLFile(t, filepath.Join(dir, "prometheus.yml"), &cfg)
	localize(t, cfg, strings.TrimPrefix(e.botURL, "http://"))
	local, err := json.MarshalIndent(cfg, "", "  ") // JSON is YAML to Prometheus
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(local, []byte(composeBot)) {
		t.Fatalf("the local prometheus.yml still names %s:\n%s", composeBot, local)
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), local, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("local prometheus.yml:\n%s", local)
		}
	})
	e.prom = promtest.Start(t, filepath.Join(dir, "prometheus.yml")).URL
}

// localize changes, in the decoded prometheus.yml, only what cannot work
// on this machine: the bot's compose address becomes the local bot's, the
// intervals shrink to e2eInterval, Docker discovery goes (no Docker engine
// here: the docker job stays, relabeling and all, with no targets), and so
// does alerting (no Alertmanager: the test reads alerts from Prometheus).
// Jobs, relabeling, honor_labels, authorization and rule_files stay as
// shipped; the token file is written where credentials_file points.
func localize(t *testing.T, cfg map[string]any, botAddr string) {
	t.Helper()
	local := func(job, host string) string {
		if host != composeBot {
			t.Fatalf("job %s: %s is not %s; the end-to-end test does not know where it runs locally", job, host, composeBot)
		}
		return botAddr
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		t.Fatal("prometheus.yml has no global section")
	}
	global["scrape_interval"], global["evaluation_interval"] = e2eInterval, e2eInterval
	delete(cfg, "alerting")
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		job, _ := j.(map[string]any)
		name, _ := job["job_name"].(string)
		if _, ok := job["scrape_interval"]; ok {
			job["scrape_interval"] = e2eInterval
		}
		for key := range job {
			if key != "static_configs" && !strings.HasSuffix(key, "_sd_configs") {
				continue
			}
			configs, _ := job[key].([]any)
			for _, c := range configs {
				c, _ := c.(map[string]any)
				switch key {
				case "static_configs":
					targets, _ := c["targets"].([]any)
					for i, tg := range targets {
						targets[i] = local(name, fmt.Sprint(tg))
					}
				case "http_sd_configs":
					u, err := url.Parse(fmt.Sprint(c["url"]))
					if err != nil {
						t.Fatalf("job %s: http_sd url: %v", name, err)
					}
					u.Host = local(name, u.Host)
					c["url"], c["refresh_interval"] = u.String(), e2eInterval
				case "docker_sd_configs":
					delete(job, key)
				default:
					t.Fatalf("job %s: the end-to-end test does not know how to run %s locally", name, key)
				}
			}
		}
	}
}

// runJobs submits a few jobs of each kind through the bot's web API and
// waits for each to finish, then runs one from each chat frontend.
func (e *e2e) runJobs() {
	t := e.t
	t.Helper()
	var ids []string
	for _, j := range [][2]string{
		{"echo", `{"n":1}`}, {"echo", `{"n":2}`}, {"echo", `{"n":3}`}, {"echo", `{"n":4}`},
		{"fail", `{"message":"e2e failure"}`}, {"sleep", `{"duration":"100ms"}`},
	} {
		id, err := e.submit(j[0], j[1])
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitFor(t, 15*time.Second, "job "+id+" to finish", func() (bool, string) {
			_, body, err := e.do(http.MethodGet, e.botURL+"/api/jobs/"+id, e.token, nil)
			var job struct{ Status string }
			_ = json.Unmarshal(body, &job)
			return job.Status == "succeeded" || job.Status == "failed", fmt.Sprintf("%s %v", body, err)
		})
	}
	e.runChatJobs()
}

// trickle keeps submitting jobs until stop is called, so that every rate()
// on the dashboard has something to count: the job-duration histograms, for
// one, appear only with a worker's first job of a type, and a rate needs
// observations after that.
func (e *e2e) trickle() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		kinds := [][2]string{{"echo", `{}`}, {"sleep", `{"duration":"20ms"}`}, {"echo", `{}`}, {"fail", `{"message":"e2e"}`}}
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := e.submit(kinds[i%len(kinds)][0], kinds[i%len(kinds)][1]); err != nil {
				e.t.Errorf("trickle: %v", err)
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (e *e2e) submit(typ, payload string) (string, error) {
	code, body, err := e.do(http.MethodPost, e.botURL+"/api/jobs", e.token,
		strings.NewReader(fmt.Sprintf(`{"type":%q,"payload":%s}`, typ, payload)))
	var job struct{ ID string }
	if err == nil && code == http.StatusAccepted && json.Unmarshal(body, &job) == nil && job.ID != "" {
		return job.ID, nil
	}
	return "", fmt.Errorf("POST /api/jobs %s: %d %s %v", typ, code, body, err)
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
