package cli_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/testbin"
)

// TestUp runs the README's main command for real: the embedded Redis, the
// bot, two workers and sample load, then stops it with SIGTERM.
func TestUp(t *testing.T) {
	base := freeRange(t, 3)
	dir := t.TempDir()
	p := testbin.Start(t, []string{"LOG_DIR=" + filepath.Join(dir, "logs"), "HEARTBEAT_INTERVAL=0.5", "SHUTDOWN_GRACE=1"},
		"up", "-workers", "2", "-load", "20", "-port", strconv.Itoa(base), "-redis-port", strconv.Itoa(testbin.FreePort(t)))
	worker1 := fmt.Sprintf("http://127.0.0.1:%d", base+1)

	testbin.WaitFor(t, 30*time.Second, "worker-1 to process jobs", func() bool {
		code, body := get(t, worker1+"/metrics", "")
		return code == http.StatusOK && metricValue(string(body), "worker_jobs_processed_total") >= 3
	})
	out := p.Output()
	for _, want := range []string{"botfleet is up", "redis", "worker-2", "/metrics", "worker-1   | "} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"logs/bot/bot.jsonl", "logs/workers/worker-1.jsonl", "logs/workers/worker-2.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}

	pids := childPids(t, p.Cmd.Process.Pid)
	if len(pids) != 3 {
		t.Errorf("up runs %d children, want 3 (bot and two workers): %v", len(pids), pids)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("child %d outlived up", pid)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "logs/workers/worker-1.jsonl"))
	if !strings.Contains(string(b), `"job_id"`) || !strings.Contains(string(b), "worker stopped") {
		t.Errorf("worker-1.jsonl lacks job lines or the clean stop:\n%s", b)
	}
}

// freeRange returns the first of n consecutive free loopback ports.
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := testbin.FreePort(t)
		ok := true
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no range of free ports")
	return 0
}

// childPids lists the processes whose parent is pid, from /proc.
func childPids(t *testing.T, pid int) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The parent pid is the 2nd field after the ")" that ends the name.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
