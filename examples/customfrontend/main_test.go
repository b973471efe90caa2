package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// TestSchedulerFrontendOnTheBot runs the example as a user would, with a
// real worker on a real Redis: its frontend submits jobs, the worker runs
// them, and the bot's logs and metrics show the frontend under its name.
func TestSchedulerFrontendOnTheBot(t *testing.T) {
	srv := redistest.Start(t)
	port := testbin.FreePort(t)
	example := testbin.Build(t, "./examples/customfrontend")
	b := testbin.StartBinary(t, example, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(port),
		"SCHEDULE_EVERY=0.2", `SCHEDULE_JOB={"type": "echo", "payload": {"message": "tick"}}`})
	testbin.Start(t, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=0", "WORKER_ID=w-1", "HEARTBEAT_INTERVAL=0.5"}, "worker")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	var schedule struct {
		Runs      int    `json:"runs"`
		LastJobID string `json:"last_job_id"`
	}
	testbin.WaitFor(t, 30*time.Second, "the scheduler to submit a job", func() bool {
		return getJSON(base+"/api/schedule", &schedule) == nil && schedule.LastJobID != ""
	})
	var job struct{ Status string }
	testbin.WaitFor(t, 30*time.Second, "the scheduled job to succeed", func() bool {
		return getJSON(base+"/api/jobs/"+schedule.LastJobID, &job) == nil && job.Status == "succeeded"
	})
	if !regexp.MustCompile(`"message":"scheduled job submitted","service":"scheduler".*"job_id":"echo\.`).MatchString(b.Output()) {
		t.Errorf("the bot's log has no scheduler line with service scheduler and a job_id:\n%s", b.Output())
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(metrics), `bot_jobs_submitted_total{frontend="scheduler",type="echo"}`) {
		t.Errorf("/metrics has no bot_jobs_submitted_total for the scheduler:\n%s", metrics)
	}
}

func TestScheduleFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "defaults"},
		{name: "an interval", env: map[string]string{"SCHEDULE_EVERY": "1.5"}},
		{name: "a bad interval", env: map[string]string{"SCHEDULE_EVERY": "often"}, wantErr: `SCHEDULE_EVERY="often"`},
		{name: "a job without a type", env: map[string]string{"SCHEDULE_JOB": `{"payload": {}}`}, wantErr: "SCHEDULE_JOB="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scheduleFromEnv(func(k string) string { return tt.env[k] })
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
