package bot_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/botfleet/botfleet/jobs"
)

// doKey is do with an Idempotency-Key header.
func doKey(t *testing.T, url, key, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	return send(t, req)
}

func TestIdempotentSubmission(t *testing.T) {
	ts, m, srv := newAPI(t)
	const body = `{"type":"echo","payload":{"message":"once"}}`
	code, first, _ := doKey(t, ts.URL+"/api/jobs", "order-7781", body)
	if code != http.StatusAccepted {
		t.Fatalf("first POST: %d %v", code, first)
	}
	code, again, hdr := doKey(t, ts.URL+"/api/jobs", "order-7781", body)
	if code != http.StatusOK || again["id"] != first["id"] || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried POST: %d %v (Idempotent-Replayed %q), want 200 with id %v", code, again, hdr.Get("Idempotent-Replayed"), first["id"])
	}
	if n := srv.Client(t).XLen(context.Background(), "jobs:default").Val(); n != 1 {
		t.Errorf("jobs:default holds %d entries after a retried POST, want 1", n)
	}
	if code, other, _ := doKey(t, ts.URL+"/api/jobs", "order-7782", body); code != http.StatusAccepted || other["id"] == first["id"] {
		t.Errorf("another key: %d %v, want a new job", code, other)
	}
	if got := testutil.ToFloat64(m.SubmittedCounter("echo", "web_frontend")); got != 2 {
		t.Errorf("bot_jobs_submitted_total = %v, want 2 (a replay is not a submission)", got)
	}
	if code, body, _ := doKey(t, ts.URL+"/api/jobs", "has space", body); code != 400 || !strings.Contains(body["error"].(string), "Idempotency-Key") {
		t.Errorf("bad key: %d %v, want 400 naming Idempotency-Key", code, body)
	}
}

func TestBacklogFullIs429(t *testing.T) {
	ts, m, srv := newAPIWith(t, jobs.QueueOptions{MaxBacklog: 2}, 0)
	for i := range 2 {
		if code, body, _ := do(t, "POST", ts.URL+"/api/jobs", "application/json", `{"type":"echo"}`); code != http.StatusAccepted {
			t.Fatalf("job %d: %d %v", i+1, code, body)
		}
	}
	code, body, hdr := do(t, "POST", ts.URL+"/api/jobs", "application/json", `{"type":"echo"}`)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(body["error"].(string), "JOB_MAX_BACKLOG") {
		t.Fatalf("third job: %d %v (Retry-After %q), want 429 with Retry-After naming JOB_MAX_BACKLOG", code, body, hdr.Get("Retry-After"))
	}
	if n := srv.Client(t).XLen(context.Background(), "jobs:default").Val(); n != 2 {
		t.Errorf("jobs:default holds %d entries, want the 2 accepted", n)
	}
	if got := testutil.ToFloat64(m.RejectedCounter("web_frontend", "backlog_full")); got != 1 {
		t.Errorf(`bot_jobs_rejected_total{reason="backlog_full"} = %v, want 1`, got)
	}
}

// TestFrozenRedisAnswersTrueAndPromptly: with Redis hung, a submission is
// answered within the request timeout, and the answer names the id whose
// fate is unknown; once Redis resumes, that id tells the truth.
func TestFrozenRedisAnswersTrueAndPromptly(t *testing.T) {
	ts, m, srv := newAPIWith(t, jobs.QueueOptions{}, 300*time.Millisecond)
	thaw := srv.Freeze(t)
	start := time.Now()
	code, body, hdr := do(t, "POST", ts.URL+"/api/jobs", "application/json", `{"type":"echo"}`)
	took := time.Since(start)
	id, _ := body["id"].(string)
	if code != http.StatusServiceUnavailable || body["status"] != "unknown" || id == "" || hdr.Get("Location") != "/api/jobs/"+id {
		t.Fatalf("POST with Redis frozen: %d %v, want 503 status unknown with the id", code, body)
	}
	if took > 20*time.Second { // a bound on a hang, not a timing claim: 300ms is asked
		t.Errorf("POST with Redis frozen took %v", took)
	}
	if code, _, _ := do(t, "GET", ts.URL+"/api/jobs/"+id, "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET with Redis frozen: %d, want 503", code)
	}
	if got := testutil.ToFloat64(m.RejectedCounter("web_frontend", "unknown")); got != 1 {
		t.Errorf(`bot_jobs_rejected_total{reason="unknown"} = %v, want 1`, got)
	}
	thaw()
	code, got, _ := do(t, "GET", ts.URL+"/api/jobs/"+id, "", "")
	if code != http.StatusOK && code != http.StatusNotFound {
		t.Fatalf("GET after Redis resumed: %d %v, want 200 (queued after all) or 404 (not queued)", code, got)
	}
	n := srv.Client(t).XLen(context.Background(), "jobs:default").Val()
	if (code == http.StatusOK) != (n == 1) {
		t.Errorf("GET says %d but jobs:default holds %d entries", code, n)
	}
}

// TestNotReplicatedNamesTheID: with REDIS_WAIT_REPLICAS and no replica to
// confirm, the job is on the primary but not safe: the answer says so and
// names the id, instead of blaming a slow Redis.
func TestNotReplicatedNamesTheID(t *testing.T) {
	ts, m, srv := newAPIWith(t, jobs.QueueOptions{Replicas: jobs.Replicas{Wait: 1, Timeout: 50 * time.Millisecond}}, time.Second)
	code, body, hdr := do(t, "POST", ts.URL+"/api/jobs", "application/json", `{"type":"echo"}`)
	id, _ := body["id"].(string)
	msg, _ := body["error"].(string)
	if code != http.StatusServiceUnavailable || body["status"] != "unknown" || id == "" || hdr.Get("Location") != "/api/jobs/"+id ||
		!strings.Contains(msg, "REDIS_WAIT_REPLICAS") {
		t.Fatalf("POST without a replica: %d %v, want 503 unknown naming the id and REDIS_WAIT_REPLICAS", code, body)
	}
	if n := srv.Client(t).XLen(context.Background(), "jobs:default").Val(); n != 1 {
		t.Errorf("jobs:default holds %d entries, want the job on the primary", n)
	}
	if got := testutil.ToFloat64(m.RejectedCounter("web_frontend", "unknown")); got != 1 {
		t.Errorf(`bot_jobs_rejected_total{reason="unknown"} = %v, want 1`, got)
	}
}
