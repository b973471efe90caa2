package worker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/worker"
)

// TestBotAndWorkerInOneProgram: a bot and a worker run side by side in one
// process, each with its own logger, registry and port, and every record
// each writes carries its own service and worker_id, including the job's
// records logged through a context.
func TestBotAndWorkerInOneProgram(t *testing.T) {
	srv := redistest.Start(t)
	var botOut, workerOut testbin.Buffer
	cfg := logging.DefaultConfig()
	botLog, closeBot, err := logging.New(logging.Options{Service: "bot", Config: &cfg, Stdout: &botOut})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBot()
	workerLog, closeWorker, err := logging.New(logging.Options{Service: "worker", WorkerID: "w-1", Config: &cfg, Stdout: &workerOut})
	if err != nil {
		t.Fatal(err)
	}
	defer closeWorker()

	b, err := bot.New(bot.Options{Redis: srv.Client(t), Addr: "127.0.0.1:0", Logger: botLog, NoFleetView: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{Redis: srv.Client(t), ID: "w-1", Addr: "127.0.0.1:0", Logger: workerLog, HeartbeatInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{b.Run, w.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	<-b.Started()
	<-w.Started()
	resp, err := http.Post(b.URL()+"/api/jobs", "application/json", strings.NewReader(`{"type":"echo","payload":{"message":"side by side"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	testbin.WaitFor(t, 30*time.Second, "the worker's job line", func() bool {
		return strings.Contains(workerOut.String(), `"job_id":"`+job.ID+`"`)
	})
	cancel()
	wg.Wait()

	check := func(name, out string, want map[string]any) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 {
			t.Fatalf("the %s logged %d lines:\n%s", name, len(lines), out)
		}
		for _, line := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("the %s logged a line that is not JSON: %q", name, line)
			}
			for k, v := range want {
				if got := rec[k]; got != v && !(v == nil && got == nil) {
					t.Errorf("the %s's record %q has %s=%v, want %v", name, rec["message"], k, got, v)
				}
			}
		}
	}
	check("worker", workerOut.String(), map[string]any{"service": "worker", "worker_id": "w-1"})
	for _, line := range strings.Split(strings.TrimSpace(botOut.String()), "\n") {
		var rec map[string]any
		_ = json.Unmarshal([]byte(line), &rec)
		if s := rec["service"]; s != "bot" && s != "web_frontend" || rec["worker_id"] != nil {
			t.Errorf("the bot's record %q has service %v and worker_id %v", rec["message"], s, rec["worker_id"])
		}
	}
	if !strings.Contains(botOut.String(), `"service":"web_frontend","job_id":"`+job.ID+`"`) {
		t.Errorf("the bot did not log the submission under web_frontend with its job_id:\n%s", botOut.String())
	}
}
