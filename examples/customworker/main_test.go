package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// readmeBody returns the job body of the curl command in README.md, so the
// test submits exactly what a reader copies.
func readmeBody(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`curl -s -X POST http://localhost:9200/api/jobs .* -d '([^']+)'`).FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no curl -X POST .../api/jobs -d '...' command")
	}
	return string(m[1])
}

// TestCustomWorkerJoinsTheFleet runs the example as a user would, beside a
// real bot on a real Redis: its job type, unknown to the bot, is submitted
// through the bot's job API, runs on the example, and the example shows in
// `botfleet status`.
func TestCustomWorkerJoinsTheFleet(t *testing.T) {
	srv := redistest.Start(t)
	botPort := testbin.FreePort(t)
	testbin.Start(t, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(botPort)}, "bot")
	example := testbin.Build(t, "./examples/customworker")
	w := testbin.StartBinary(t, example, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=0",
		"WORKER_ID=invoicer-1", "HEARTBEAT_INTERVAL=0.5"})
	base := fmt.Sprintf("http://127.0.0.1:%d", botPort)

	// The bot accepts the type once the worker has advertised it.
	var id string
	testbin.WaitFor(t, 30*time.Second, "the bot to accept invoice.total", func() bool {
		resp, err := http.Post(base+"/api/jobs", "application/json", strings.NewReader(readmeBody(t)))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var got struct{ ID string }
		_ = json.NewDecoder(resp.Body).Decode(&got)
		id = got.ID
		return resp.StatusCode == http.StatusAccepted
	})
	var job struct {
		Status string
		Result struct {
			InvoiceID  string `json:"invoice_id"`
			TotalCents int64  `json:"total_cents"`
		}
	}
	testbin.WaitFor(t, 30*time.Second, "the invoice job to succeed", func() bool {
		resp, err := http.Get(base + "/api/jobs/" + id)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &job)
		return job.Status == "succeeded"
	})
	if job.Result.InvoiceID != "INV-1001" || job.Result.TotalCents != 3*1250+8900 {
		t.Errorf("result %+v, want INV-1001 totalling %d", job.Result, 3*1250+8900)
	}
	if out := w.Output(); !strings.Contains(out, `"message":"invoice totalled"`) || !strings.Contains(out, `"job_id":"`+id+`"`) ||
		!strings.Contains(out, `"invoice_id":"INV-1001"`) {
		t.Errorf("the worker's log has no invoice line with job_id %s and invoice_id:\n%s", id, out)
	}

	status := testbin.Start(t, []string{"REDIS_URL=" + srv.URL()}, "status", "-o", "json")
	if code := status.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("botfleet status exited %d:\n%s", code, status.Output())
	}
	var fleet struct {
		Workers []struct {
			WorkerID string `json:"worker_id"`
			Health   string `json:"health"`
		}
	}
	if err := json.Unmarshal(bytes.TrimSpace([]byte(status.Output())), &fleet); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, status.Output())
	}
	found := false
	for _, wk := range fleet.Workers {
		found = found || wk.WorkerID == "invoicer-1" && wk.Health == "alive"
	}
	if !found {
		t.Errorf("botfleet status does not show invoicer-1 alive:\n%s", status.Output())
	}
}

// TestInvoiceValidate names the field at fault, as the bot's 400 does.
func TestInvoiceValidate(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    string // "" for valid
	}{
		{"valid", `{"invoice_id":"INV-1","customer":"acme","currency":"EUR","lines":[{"sku":"A","quantity":1,"unit_cents":5}]}`, ""},
		{"misspelt field", `{"invoice":"INV-1"}`, "invoice"},
		{"bad id", `{"invoice_id":"1","customer":"acme","currency":"EUR","lines":[{"sku":"A","quantity":1,"unit_cents":5}]}`, `"invoice_id"`},
		{"no lines", `{"invoice_id":"INV-1","customer":"acme","currency":"EUR","lines":[]}`, `"lines"`},
		{"zero quantity", `{"invoice_id":"INV-1","customer":"acme","currency":"EUR","lines":[{"sku":"A","quantity":0,"unit_cents":5}]}`, `"lines[0].quantity"`},
		{"lower-case currency", `{"invoice_id":"INV-1","customer":"acme","currency":"eur","lines":[{"sku":"A","quantity":1,"unit_cents":5}]}`, `"currency"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := InvoiceHandler{}.Validate(json.RawMessage(tt.payload))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
