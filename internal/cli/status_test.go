package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// status runs `botfleet status args...` against srv and returns its exit
// code and output.
func status(t *testing.T, srv *redistest.Server, args ...string) (int, string) {
	t.Helper()
	p := testbin.Start(t, []string{"REDIS_URL=" + srv.URL()}, append([]string{"status"}, args...)...)
	code := p.Wait(t, 15*time.Second)
	return code, p.Output()
}

func TestStatusCommand(t *testing.T) {
	srv := redistest.Start(t)
	if code, out := status(t, srv); code != 1 || !strings.Contains(out, "0 workers") {
		t.Errorf("empty fleet: exit %d, want 1 (no worker alive):\n%s", code, out)
	}
	startWorker(t, srv, "worker-s1")
	testbin.WaitFor(t, 10*time.Second, "worker-s1 in the index", func() bool {
		return srv.Client(t).ZScore(t.Context(), "worker:index", "worker-s1").Err() == nil
	})

	code, out := status(t, srv)
	if code != 0 {
		t.Fatalf("exit %d with a live worker:\n%s", code, out)
	}
	for _, want := range []string{"WORKER", "STATE", "worker-s1", "IDLE", "alive", "1 worker: 1 alive (1 IDLE)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	code, out = status(t, srv, "-o", "json")
	var f struct {
		Summary struct{ Alive int } `json:"summary"`
		Workers []struct {
			WorkerID string `json:"worker_id"`
			Health   string `json:"health"`
		} `json:"workers"`
	}
	if err := json.Unmarshal([]byte(out), &f); err != nil || code != 0 {
		t.Fatalf("-o json: exit %d, %v:\n%s", code, err, out)
	}
	if f.Summary.Alive != 1 || len(f.Workers) != 1 || f.Workers[0].WorkerID != "worker-s1" || f.Workers[0].Health != "alive" {
		t.Errorf("-o json = %+v", f)
	}

	if code, out := status(t, srv, "worker-s1"); code != 0 || !strings.Contains(out, "worker-s1") || !strings.Contains(out, "Metrics:") {
		t.Errorf("status worker-s1: exit %d:\n%s", code, out)
	}
	if code, out := status(t, srv, "worker-nope"); code != 1 || !strings.Contains(out, `no worker "worker-nope"`) {
		t.Errorf("status worker-nope: exit %d:\n%s", code, out)
	}
	if code, out := status(t, srv, "-o", "yaml"); code != 2 || !strings.Contains(out, "want table or json") {
		t.Errorf("-o yaml: exit %d:\n%s", code, out)
	}
}

func TestStatusPages(t *testing.T) {
	srv := redistest.Start(t)
	startWorker(t, srv, "worker-p1")
	// A second worker, beating as a Go worker does, for a minute.
	s := heartbeat.Status{Identity: heartbeat.Identity{WorkerID: "worker-p2"}, State: "BUSY", Timestamp: time.Now(), Interval: time.Minute}
	if err := heartbeat.Write(t.Context(), srv.Client(t), s, heartbeat.Options{StateIndex: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
		wantNot  []string
	}{
		{"first page", []string{"-limit", "1"}, 0, []string{"worker-p1", "2 workers: 2 alive", "more workers: -cursor worker-p1"}, []string{"worker-p2"}},
		{"next page", []string{"-limit", "1", "-cursor", "worker-p1"}, 0, []string{"worker-p2", "BUSY"}, []string{"worker-p1 ", "more workers"}},
		{"by state", []string{"-state", "busy"}, 0, []string{"worker-p2"}, []string{"worker-p1 "}},
		{"by prefix", []string{"-prefix", "worker-p1"}, 0, []string{"worker-p1"}, []string{"worker-p2"}},
		{"json", []string{"-limit", "1", "-o", "json"}, 0, []string{`"next_cursor": "worker-p1"`}, nil},
		{"unknown state", []string{"-state", "RUNNING"}, 2, []string{`-state "RUNNING": want one of STARTING`}, nil},
		{"limit out of range", []string{"-limit", "0"}, 2, []string{"-limit 0: want 1 to 1000"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := status(t, srv, tt.args...)
			if code != tt.wantCode {
				t.Errorf("status %v: exit %d, want %d:\n%s", tt.args, code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("status %v lacks %q:\n%s", tt.args, w, out)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("status %v has %q:\n%s", tt.args, w, out)
				}
			}
		})
	}
}
