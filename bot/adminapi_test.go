package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging/logtest"
)

// Tokens of the admin tests.
const (
	readToken   = "read-t0ken"
	submitToken = "submit-t0ken"
	adminToken  = "admin-t0ken"
)

// adminBot is a running bot with all three tokens, a consumer running
// "flaky" jobs that fail while failing is set, and its records.
type adminBot struct {
	url     string
	rdb     *redistest.Server
	reg     *prometheus.Registry
	logs    *logtest.Recorder
	failing *atomic.Bool
	worker  *jobs.Consumer
}

func startAdminBot(t *testing.T) *adminBot {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	failing := &atomic.Bool{}
	mux := jobs.NewMux()
	mux.HandleFunc("flaky", func(context.Context, *jobs.Job) (any, error) {
		if failing.Load() {
			return nil, errors.New("upstream said no")
		}
		return "ok", nil
	})
	logs := logtest.Capture(t)
	reg := prometheus.NewRegistry()
	b, err := bot.New(bot.Options{Redis: rdb, Addr: "127.0.0.1:0", Types: mux, Logger: logs.Logger(), Registry: reg,
		AuthToken: readToken, SubmitToken: submitToken, AdminToken: adminToken, GrafanaURL: "https://grafana.example.com/",
		MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-b.Started()
	testbin.WaitFor(t, 10*time.Second, "the bot's URL", func() bool { return b.URL() != "" }) // set just after Started
	c := jobs.NewConsumer(rdb, "", "worker-1", mux, jobs.ConsumerOptions{Backoff: 5 * time.Millisecond, Logger: logs.Logger()})
	go c.Run(ctx)
	t.Cleanup(func() { c.Shutdown(context.Background()) })
	return &adminBot{url: b.URL(), rdb: srv, reg: reg, logs: logs, failing: failing, worker: c}
}

// call sends a request with a bearer token and decodes the JSON answer.
func (a *adminBot) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (a *adminBot) status(t *testing.T, id string) string {
	t.Helper()
	_, m := a.call(t, "GET", "/api/jobs/"+id, readToken, "")
	s, _ := m["status"].(string)
	return s
}

// TestAdminAPIRetriesDeadJobsOfOneType is the first "done when"
// through the API: dead jobs of one type from the last hour are found,
// retried with the admin token, and succeed; the scrape token can neither
// submit nor act; the action is logged with the credential's name only
// and counted.
func TestAdminAPIRetriesDeadJobsOfOneType(t *testing.T) {
	a := startAdminBot(t)
	a.failing.Store(true)
	if code, _ := a.call(t, "POST", "/api/jobs", readToken, `{"type":"flaky"}`); code != http.StatusUnauthorized {
		t.Errorf("submit with the read token = %d, want 401", code)
	}
	var ids []string
	for range 2 {
		code, m := a.call(t, "POST", "/api/jobs", submitToken, `{"type":"flaky","payload":{"token":"s3cret","n":1}}`)
		if code != http.StatusAccepted {
			t.Fatalf("submit with the submit token = %d %v, want 202", code, m)
		}
		ids = append(ids, m["id"].(string))
	}
	for _, id := range ids {
		testbin.WaitFor(t, 15*time.Second, id+" dead", func() bool { return a.status(t, id) == jobs.StatusFailed })
	}
	code, page := a.call(t, "GET", "/api/admin/jobs?status=dead&type=flaky&since=1h", readToken, "")
	if list, _ := page["jobs"].([]any); code != 200 || len(list) != 2 {
		t.Fatalf("dead flaky jobs of the last hour = %d %v, want 2", code, page)
	}
	code, detail := a.call(t, "GET", "/api/admin/jobs/"+ids[0], readToken, "")
	payload, _ := json.Marshal(detail["payload"])
	hist, _ := detail["attempt_history"].([]any)
	if code != 200 || strings.Contains(string(payload), "s3cret") || len(hist) != 2 ||
		!strings.Contains(fmt.Sprint(detail["logs_url"]), "grafana.example.com/explore") {
		t.Errorf("job detail = %d %v; want the payload redacted, 2 attempts, a logs link", code, detail)
	}

	if code, _ := a.call(t, "POST", "/api/admin/dead/retry?type=flaky&since=1h", readToken, ""); code != http.StatusUnauthorized {
		t.Errorf("retry with the read token = %d, want 401", code)
	}
	a.failing.Store(false)
	code, res := a.call(t, "POST", "/api/admin/dead/retry?type=flaky&since=1h", adminToken, "")
	if code != 200 || res["count"] != float64(2) {
		t.Fatalf("retry with the admin token = %d %v, want 2 retried", code, res)
	}
	for _, id := range ids {
		testbin.WaitFor(t, 15*time.Second, id+" succeeded after the retry", func() bool { return a.status(t, id) == jobs.StatusSucceeded })
	}
	if code, _ := a.call(t, "POST", "/api/admin/jobs/"+ids[0]+"/retry", adminToken, ""); code != http.StatusConflict {
		t.Errorf("retry of a succeeded job = %d, want 409", code)
	}

	var logged bool
	for _, r := range a.logs.Records() {
		if r.Message == "admin action" && r.Attrs["action"] == "retry_dead" && r.Attrs["credential"] == "ADMIN_TOKEN" {
			logged = true
		}
		if strings.Contains(fmt.Sprint(r.Attrs), adminToken) {
			t.Errorf("a record holds the admin token: %v", r.Attrs)
		}
	}
	if !logged {
		t.Error("no INFO record of the retry naming ADMIN_TOKEN")
	}
	want := `# HELP bot_admin_actions_total Operator actions done (through the admin API, the CLI or the dashboard), by action.
# TYPE bot_admin_actions_total counter
`
	for _, act := range []string{"delete", "pause", "purge_dead", "quiet", "resume", "retry", "retry_dead", "stop", "unquiet"} {
		n := 0
		if act == "retry_dead" {
			n = 1
		}
		want += fmt.Sprintf("bot_admin_actions_total{action=%q} %d\n", act, n)
	}
	if err := testutil.GatherAndCompare(a.reg, strings.NewReader(want), "bot_admin_actions_total"); err != nil {
		t.Error(err)
	}
}

// TestAdminAPIPausesQueue pauses the queue through the API: a job
// submitted meanwhile is accepted and waits, the overview says paused,
// and the job runs once resumed.
func TestAdminAPIPausesQueue(t *testing.T) {
	a := startAdminBot(t)
	if code, m := a.call(t, "POST", "/api/admin/queues/default/pause", adminToken, ""); code != 200 {
		t.Fatalf("pause = %d %v", code, m)
	}
	testbin.WaitFor(t, 15*time.Second, "the worker to read the pause", a.worker.Paused)
	code, m := a.call(t, "POST", "/api/jobs", submitToken, `{"type":"flaky"}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit while paused = %d %v, want 202", code, m)
	}
	id := m["id"].(string)
	_, qs := a.call(t, "GET", "/api/admin/queues", readToken, "")
	list, _ := qs["queues"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["paused"] != true || list[0].(map[string]any)["waiting"] != float64(1) {
		t.Errorf("queues while paused = %v, want default paused with 1 waiting", qs)
	}
	if s := a.status(t, id); s != jobs.StatusQueued {
		t.Errorf("job while paused is %s, want queued", s)
	}
	if code, _ := a.call(t, "POST", "/api/admin/queues/default/resume", adminToken, ""); code != 200 {
		t.Fatalf("resume = %d", code)
	}
	testbin.WaitFor(t, 15*time.Second, "the job to run after the resume", func() bool { return a.status(t, id) == jobs.StatusSucceeded })
}

// TestUnprotectedAPIOnlyOnLoopback: without the submit and admin tokens,
// a bot listening on every interface refuses to start and names both
// variables; on loopback it starts.
func TestUnprotectedAPIOnlyOnLoopback(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	_, err := bot.New(bot.Options{Redis: rdb, Addr: ":0", Registry: prometheus.NewRegistry()})
	if !errors.Is(err, bot.ErrUnprotected) || !strings.Contains(err.Error(), "SUBMIT_TOKEN and ADMIN_TOKEN") {
		t.Errorf("New on :0 without tokens = %v, want ErrUnprotected naming SUBMIT_TOKEN and ADMIN_TOKEN", err)
	}
	_, err = bot.New(bot.Options{Redis: rdb, Addr: ":0", SubmitToken: "s", Registry: prometheus.NewRegistry()})
	if err == nil || strings.Contains(err.Error(), "SUBMIT_TOKEN") || !strings.Contains(err.Error(), "ADMIN_TOKEN") {
		t.Errorf("New on :0 with the submit token only = %v, want ADMIN_TOKEN named alone", err)
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		if _, err := bot.New(bot.Options{Redis: rdb, Addr: addr, Registry: prometheus.NewRegistry()}); err != nil {
			t.Errorf("New on %s without tokens = %v, want nil", addr, err)
		}
	}
}
