// Package promtest runs a real Prometheus (the Debian package prometheus)
// for tests: on a free loopback port, with its data in a temporary
// directory, ready when Start returns, stopped when the test ends.
package promtest

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/testbin"
)

// Server is one running prometheus.
type Server struct {
	// URL is its base URL, http://127.0.0.1:<port>.
	URL string
	out *testbin.Buffer
}

// Start runs prometheus with the configuration file at config (relative
// paths in it resolve from its directory, which is also the working
// directory) and waits until /-/ready answers. Its output is logged if the
// test fails.
func Start(t testing.TB, config string) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found: run `make test` (installs it) or apt-get install prometheus: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testbin.FreePort(t)))
	s := &Server{URL: "http://" + addr, out: &testbin.Buffer{}}
	cmd := exec.Command(bin, "--config.file="+config, "--web.listen-address="+addr,
		"--storage.tsdb.path="+filepath.Join(t.TempDir(), "data"), "--log.level=warn")
	cmd.Dir = filepath.Dir(config)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test binary
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Registered after TempDir, so it runs first: prometheus is gone
	// before its data directory is removed.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", s.Output())
		}
	})
	testbin.WaitFor(t, 20*time.Second, "prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %v\n%s", cmd.ProcessState, s.Output())
		default:
		}
		resp, err := http.Get(s.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// Output returns what prometheus printed so far.
func (s *Server) Output() string { return s.out.String() }
