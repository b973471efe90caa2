package jobs

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain checks that every goroutine a Consumer starts has ended once the
// tests (and their Shutdowns) are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := consumerGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "consumer goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// consumerParts are the types whose methods a Consumer's goroutines run.
var consumerParts = []string{"Consumer", "reader", "processor", "committer", "keeper", "ledger"}

// consumerGoroutines waits up to timeout for the package's goroutines to
// end and returns the stacks of those that did not.
func consumerGoroutines(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, part := range consumerParts {
				if strings.Contains(g, "botfleet/jobs.(*"+part+")") {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
