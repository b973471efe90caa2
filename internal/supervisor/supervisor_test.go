package supervisor

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging/logtest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sh(name, script string) Spec {
	return Spec{Name: name, Path: "/bin/sh", Args: []string{"-c", script}, Env: os.Environ()}
}

func TestRestartsACrashedChildWithBackoff(t *testing.T) {
	var out syncBuf
	rec := logtest.NewRecorder()
	s := New(Options{Output: &out, Logger: rec.Logger(), MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond})
	if err := s.Start(sh("crasher", `echo started; exit 3`)); err != nil {
		t.Fatal(err)
	}
	// Four runs, each seen through its own prefixed output line.
	waitFor(t, 10*time.Second, "four runs' output", func() bool {
		return strings.Count(out.String(), "crasher    | started") >= 4
	})
	s.StopAll(time.Second)
	if n := s.Restarts("crasher"); n < 3 {
		t.Errorf("%d restarts, want at least 3", n)
	}
	var crashes int
	for _, r := range rec.Records() {
		if r.Message == "process exited unexpectedly; restarting" {
			crashes++
			if r.Attrs["process"] != "crasher" || !strings.Contains(r.Attrs["exit"].(string), "exit status 3") {
				t.Errorf("crash report: %v", r.Attrs)
			}
		}
	}
	if crashes < 3 {
		t.Errorf("%d crashes reported, want one per exit", crashes)
	}
	// Backoff doubles up to the cap.
	var delays []time.Duration
	for _, r := range rec.Records() {
		if d, ok := r.Attrs["restart_in"].(time.Duration); ok {
			delays = append(delays, d)
		}
	}
	if len(delays) < 3 || delays[0] != 20*time.Millisecond || delays[1] != 40*time.Millisecond || delays[2] != 80*time.Millisecond {
		t.Errorf("restart delays %v, want 20ms, 40ms, 80ms, ...", delays)
	}
}

func TestStopTerminatesThenKills(t *testing.T) {
	s := New(Options{Output: &syncBuf{}, Logger: slog.New(slog.DiscardHandler)})
	if err := s.Start(sh("polite", `trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(sh("stubborn", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)); err != nil {
		t.Fatal(err)
	}
	pids := []int{s.Pid("polite"), s.Pid("stubborn")}
	s.StopAll(300 * time.Millisecond) // "stubborn" ignores SIGTERM: it is killed after the grace
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d survived StopAll", pid)
		}
	}
	if s.Restarts("polite") != 0 || s.Restarts("stubborn") != 0 {
		t.Error("a child stopped on purpose was restarted")
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name, line string
		want       []string
		not        []string
	}{
		{"record", `{"timestamp":"2026-11-26T21:04:05.123456Z","levelname":"ERROR","message":"job failed","service":"worker","worker_id":"worker-1","job_id":"echo.k3f9x2","hostname":"h","error":"boom","attempt":2}`,
			[]string{"ERROR", "job failed", "job_id=echo.k3f9x2", "error=boom", "attempt=2"}, []string{"worker_id", "hostname", "service="}},
		{"another service is shown", `{"levelname":"INFO","message":"job submitted","service":"web_frontend"}`, []string{"service=web_frontend"}, nil},
		{"not JSON passes through escaped", "panic: boom\x1b[2J", []string{`panic: boom\x1b[2J`}, nil},
		{"values with spaces are quoted", `{"levelname":"INFO","message":"m","error":"dial tcp: refused"}`, []string{`error="dial tcp: refused"`}, nil},
	}
	for _, tt := range tests {
		got := Render([]byte(tt.line), false)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tt.name, got, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q has %q", tt.name, got, n)
			}
		}
		if strings.ContainsRune(got, 0x1b) {
			t.Errorf("%s: an escape code reached the console: %q", tt.name, got)
		}
	}
}
