// Package testbin builds the botfleet binary once per test process and runs
// it as a child, for end-to-end tests that need real processes: signals,
// kill -9, separate log files, ports.
package testbin

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // package -> binary
)

// Path returns the path of a botfleet binary built from this module's
// source (once per test binary, into a temporary directory).
func Path(t testing.TB) string { return Build(t, "./cmd/botfleet") }

// Build builds the main package pkg of this module ("./examples/customworker")
// once per test binary, into a temporary directory, and returns the
// binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "botfleet-bin-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = bin
	return bin
}

// Proc is a running botfleet process whose output is kept for assertions
// and failure messages.
type Proc struct {
	Cmd    *exec.Cmd
	out    *Buffer
	waited chan struct{}
	err    error
}

// Start runs botfleet with args and env (added to a minimal environment).
// The process is killed when the test ends, if still running.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	return StartBinary(t, Path(t), env, args...)
}

// StartBinary is Start for the binary at path (one Build returned).
func StartBinary(t testing.TB, path string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p := &Proc{Cmd: cmd, out: &Buffer{}, waited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so a kill reaches its children; and it dies
	// with the test binary, even one killed by -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start botfleet %v: %v", args, err)
	}
	go func() { p.err = cmd.Wait(); close(p.waited) }()
	t.Cleanup(func() {
		select {
		case <-p.waited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.waited
		}
		if t.Failed() {
			t.Logf("output of botfleet %v:\n%s", args, p.Output())
		}
	})
	return p
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits up to d for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.waited:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("botfleet did not exit within %v\n%s", d, p.Output())
		return -1
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.waited }

// WaitFor polls cond every 20ms until it is true or d passes.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for concurrent writes and reads: the
// output of a process or a logger under test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*Buffer)(nil)

// FreePort returns a loopback port nobody listens on right now, for a
// process under test to listen on.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
