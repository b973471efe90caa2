// Package redistest starts a real redis-server for tests.
//
// Each Start runs its own redis-server process on a free 127.0.0.1 port,
// with persistence off and a temporary directory of its own, and stops it
// when the test ends, so tests never share data and may run in parallel.
// Stop and Restart simulate an outage on the same address.
//
// redis-server must be on PATH (`make test` installs it). When it is not,
// Start fails the test rather than skipping it: a skipped integration suite
// looks green while it tests nothing.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readyTimeout bounds the wait for a started server to answer.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds the wait for a killed server to exit and free its port.
	stopTimeout = 10 * time.Second
	// pollInterval is the pause between readiness or shutdown probes.
	pollInterval = 5 * time.Millisecond
	// startAttempts is how often Start tries a fresh port when another
	// process took the one it picked.
	startAttempts = 3
)

// errPortTaken reports that redis-server could not listen on its port, or
// that another server answered there.
var errPortTaken = errors.New("port already in use")

// Server is one redis-server process listening on 127.0.0.1. Addr, URL and
// Client are safe for concurrent use, also while the server is down; Stop
// and Restart are meant for the test goroutine.
type Server struct {
	bin  string // path of redis-server
	dir  string // working directory: redis.log, and nothing else with persistence off
	port int

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd     *exec.Cmd
	logPath string        // where its stdout and stderr go
	exited  chan struct{} // closed once cmd.Wait returns
}

// Start starts a redis-server on a free port and returns once it answers
// PING. The server is stopped, and its directory removed, when the test
// ends. Start fails the test if redis-server is missing or does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found: run `make test` (installs it) or apt-get install redis-server (%v)", err)
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	// Registered after TempDir's own cleanup, so it runs first: the
	// process is gone before its directory is removed.
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("redistest: %v", err)
		}
	})
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.port = port // before s is shared: Addr reads it without a lock
		err = s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			t.Fatalf("redistest: %v\n%s", err, s.logTail())
		}
	}
}

// Addr returns the server's address, "127.0.0.1:port". It stays the same
// across Stop and Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the server's database 0 as a URL, "redis://127.0.0.1:port/0".
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Client returns a go-redis client of the server with default options,
// closed when the test ends. Tests that need other options can build their
// own from Addr or URL.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server, as a crash or an outage would, and returns once its
// port refuses connections. Clients see errors until Restart. Stopping a
// stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("redistest: %v\n%s", err, s.logTail())
	}
}

// Freeze stops the server's process with SIGSTOP, as a hung Redis: it
// accepts connections but answers nothing. It returns a function that
// resumes it (SIGCONT); the server is resumed when the test ends in any
// case.
func (s *Server) Freeze(t testing.TB) (thaw func()) {
	t.Helper()
	s.mu.Lock()
	proc := s.proc
	s.mu.Unlock()
	if proc == nil {
		t.Fatal("redistest: Freeze: the server is stopped")
	}
	return proc.freeze(t)
}

// freeze suspends the process (SIGSTOP) and returns the function that
// resumes it (SIGCONT), called at the end of the test in any case.
func (p *process) freeze(t testing.TB) (thaw func()) {
	t.Helper()
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: freeze %s: %v", p.logPath, err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	return thaw
}

// Restart starts the server again on the same port, stopping it first if it
// is running, and returns once it answers PING. With persistence off it
// comes back empty.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("redistest: %v\n%s", err, s.logTail())
	}
	// Another process may have taken the port while the server was down;
	// give it until the deadline to let go.
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			t.Fatalf("redistest: restart: %v\n%s", err, s.logTail())
		}
		time.Sleep(10 * pollInterval)
	}
}

// start runs redis-server on s.port and waits until it answers. On failure
// the process is gone when start returns.
func (s *Server) start() error {
	port := s.port
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("start: already running")
	}
	p, err := launch(s.bin, s.dir, s.logPath(), port, fmt.Sprintf("on port %d", port))
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// launch runs redis-server on 127.0.0.1:port, persistence off, in dir,
// its output appended to logPath (after a line saying what starts, what
// describing it), with extra arguments after the common ones, and waits
// until it answers PING. On failure the process is gone when it returns.
func launch(bin, dir, logPath string, port int, what string, extra ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "--- redistest: starting %s %s\n", bin, what)
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "", // stdout, which is the log file
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with the test binary, even one killed by -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	if err := p.waitReady(port); err != nil {
		_ = p.kill()
		return nil, err
	}
	return p, nil
}

// stop kills the running process, if any, and waits until it has exited
// and its port refuses connections.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	p := s.proc
	s.proc = nil
	if err := p.kill(); err != nil {
		return err
	}
	deadline := time.Now().Add(stopTimeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("stop: %s still accepts connections %v after redis-server exited", s.Addr(), stopTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// kill sends SIGKILL and waits for the process to exit. Persistence is off,
// so a graceful SHUTDOWN would save nothing more.
func (p *process) kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("redis-server (pid %d) did not exit %v after SIGKILL", p.cmd.Process.Pid, stopTimeout)
	}
}

// waitReady polls port until this process answers, it exits, or
// readyTimeout passes. Answering means more than a PONG: the reply to INFO
// must carry this process's pid, or the port belongs to someone else.
func (p *process) waitReady(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		pid, err := serverPID(addr)
		switch {
		case err == nil && pid == p.cmd.Process.Pid:
			return nil
		case err == nil:
			lastErr = fmt.Errorf("%s is answered by another redis-server (pid %d): %w", addr, pid, errPortTaken)
		default:
			lastErr = err
		}
		select {
		case <-p.exited:
			// A failed bind is the one error worth a retry on another port.
			if pid != 0 || p.bindFailed() {
				return fmt.Errorf("redis-server could not listen on %s: %w", addr, errPortTaken)
			}
			return fmt.Errorf("redis-server exited before answering on %s: %v", addr, p.cmd.ProcessState)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not answer on %s within %v: %v", addr, readyTimeout, lastErr)
		}
	}
}

// serverPID asks the server at addr for its process id with INFO server.
func serverPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	header, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(header, "$") {
		// "-LOADING ..." and the like: up, but not ready.
		return 0, fmt.Errorf("INFO server: %s", strings.TrimSpace(header))
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("INFO server: no process_id: %w", err)
		}
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
}

// bindFailed reports whether the log of the exited process says it could
// not listen on its port.
func (p *process) bindFailed() bool {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return false
	}
	// Only the last run's lines: the log is appended to across restarts.
	if i := bytes.LastIndex(data, []byte("--- redistest: starting")); i >= 0 {
		data = data[i:]
	}
	return bytes.Contains(data, []byte("Address already in use")) ||
		bytes.Contains(data, []byte("Could not create server TCP listening socket"))
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }

// logTail returns the last lines of the server's log, for failure messages.
func (s *Server) logTail() string {
	const maxLines = 20
	data, err := os.ReadFile(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no redis-server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-maxLines):]
	return "redis-server log (" + s.logPath() + "), last lines:\n\t" + strings.Join(lines, "\n\t")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CLI runs the real redis-cli against s with args or, with none, the
// commands in stdin, as a person or a worker in another language would, and
// returns what it printed. A redis-cli that fails, or a reply line that is
// an error (ERR ..., (error) ...), fails the test.
func (s *Server) CLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found: run `make test` (installs it) or apt-get install redis-tools: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"-u", s.URL()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "ERR") || strings.HasPrefix(line, "(error)") {
			t.Fatalf("redis-cli %v answered an error:\n%s", args, out.String())
		}
	}
	return out.String()
}
