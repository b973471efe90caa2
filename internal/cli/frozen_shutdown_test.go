package cli_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// TestWorkerStopsWithRedisFrozen: a worker given SIGTERM while Redis is
// hung (SIGSTOP) still exits, within SHUTDOWN_GRACE plus its bounded
// Redis waits (deregistering, closing), as Docker's stop timeout needs;
// it took 19 s with SHUTDOWN_GRACE=5 before every wait was bounded.
func TestWorkerStopsWithRedisFrozen(t *testing.T) {
	srv := redistest.Start(t)
	w := startWorker(t, srv, "worker-frozen", "SHUTDOWN_GRACE=2")
	testbin.WaitFor(t, 15*time.Second, "the worker's first beat", func() bool {
		return srv.Client(t).Exists(t.Context(), "worker:heartbeat:worker-frozen").Val() == 1
	})
	srv.Freeze(t)
	start := time.Now()
	w.proc.Signal(t, syscall.SIGTERM)
	// grace 2 s + deregistering 3 s + closing 5 s, with room for a busy
	// machine: a bound on a hang, not a timing claim.
	code := w.proc.Wait(t, 30*time.Second)
	t.Logf("the worker exited %d, %v after SIGTERM with Redis frozen", code, time.Since(start).Round(10*time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !strings.Contains(w.proc.Output(), `"message":"worker stopped`) {
		t.Errorf("the worker did not log its stop:\n%s", w.proc.Output())
	}
}
