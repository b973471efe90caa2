// Package supervisor runs botfleet's processes as children of `botfleet up`:
// it starts them, shows their logs interleaved with one prefix and colour
// per process (as `docker compose up` does), restarts a child that crashes
// with backoff, and stops them in order.
package supervisor

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Spec describes one child process.
type Spec struct {
	Name string   // shown as the prefix, e.g. "worker-1"
	Path string   // the program
	Args []string // its arguments
	Env  []string // its whole environment
}

// Options configures a Supervisor.
type Options struct {
	// Output receives every child's lines, prefixed; it is written by one
	// goroutine at a time.
	Output io.Writer
	// Color colours the prefixes.
	Color bool
	// Logger reports starts, crashes and restarts.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the delay before restarting a
	// crashed child (defaults 1s and 30s); it doubles per crash in a row
	// and resets after a child has run for a minute.
	MinBackoff, MaxBackoff time.Duration
}

// Supervisor runs children. Safe for concurrent use.
type Supervisor struct {
	opts  Options
	outMu sync.Mutex
	mu    sync.Mutex
	procs []*child
	wg    sync.WaitGroup
}

type child struct {
	spec    Spec
	color   string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current run exits
	stop    chan struct{} // closed to stop supervising
	stopped bool
	starts  int
}

var palette = []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[93m", "\x1b[92m", "\x1b[95m", "\x1b[94m"}

// New returns a Supervisor.
func New(o Options) *Supervisor {
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Supervisor{opts: o}
}

// Start starts a child and keeps it running until Stop: a child that exits
// on its own is reported and restarted with backoff. The first start's
// error is returned.
func (s *Supervisor) Start(spec Spec) error {
	s.mu.Lock()
	c := &child{spec: spec, color: palette[len(s.procs)%len(palette)], stop: make(chan struct{})}
	s.procs = append(s.procs, c)
	s.mu.Unlock()
	if err := s.run(c); err != nil {
		return err
	}
	s.wg.Add(1)
	go s.watch(c)
	return nil
}

// run starts one run of c.
func (s *Supervisor) run(c *child) error {
	cmd := exec.Command(c.spec.Path, c.spec.Args...)
	cmd.Env = c.spec.Env
	// The child dies with us even if we are killed with SIGKILL, so
	// `botfleet up` never leaves a process behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.spec.Name, err)
	}
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.starts++
	c.mu.Unlock()
	go func() {
		s.copyLines(c, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	return nil
}

// watch restarts c when it exits without being asked to.
func (s *Supervisor) watch(c *child) {
	defer s.wg.Done()
	backoff := s.opts.MinBackoff
	for {
		c.mu.Lock()
		exited, cmd := c.exited, c.cmd
		c.mu.Unlock()
		began := time.Now()
		select {
		case <-exited:
		case <-c.stop:
			return
		}
		if c.isStopped() {
			return
		}
		if time.Since(began) > time.Minute {
			backoff = s.opts.MinBackoff
		}
		s.opts.Logger.Error("process exited unexpectedly; restarting", "process", c.spec.Name,
			"exit", cmd.ProcessState.String(), "restart_in", backoff)
		select {
		case <-time.After(backoff):
		case <-c.stop:
			return
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
		if err := s.run(c); err != nil {
			s.opts.Logger.Error("restart failed", "process", c.spec.Name, "error", err)
		}
	}
}

func (c *child) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// Restarts returns how many times the named child was started, or 0.
func (s *Supervisor) Restarts(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.procs {
		if c.spec.Name == name {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.starts - 1
		}
	}
	return 0
}

// Pid returns the current process id of the named child, or 0.
func (s *Supervisor) Pid(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.procs {
		if c.spec.Name == name {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.cmd != nil && c.cmd.Process != nil {
				return c.cmd.Process.Pid
			}
		}
	}
	return 0
}

// Stop stops the named children in parallel: SIGTERM, then SIGKILL for
// those still running after grace. It returns when all have exited.
func (s *Supervisor) Stop(grace time.Duration, names ...string) {
	var wg sync.WaitGroup
	s.mu.Lock()
	for _, c := range s.procs {
		if !contains(names, c.spec.Name) {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.terminate(grace) }()
	}
	s.mu.Unlock()
	wg.Wait()
}

// StopAll stops every child, in the reverse of the order they started
// in groups: callers that want workers first call Stop for them first.
func (s *Supervisor) StopAll(grace time.Duration) {
	s.mu.Lock()
	var names []string
	for _, c := range s.procs {
		names = append(names, c.spec.Name)
	}
	s.mu.Unlock()
	s.Stop(grace, names...)
	s.wg.Wait()
}

func (c *child) terminate(grace time.Duration) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	close(c.stop)
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copyLines writes each of the child's lines to the output, rendered and
// prefixed.
func (s *Supervisor) copyLines(c *child, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := fmt.Sprintf("%-10s | ", c.spec.Name)
	if s.opts.Color {
		prefix = c.color + prefix + "\x1b[0m"
	}
	for sc.Scan() {
		line := Render(sc.Bytes(), s.opts.Color)
		s.outMu.Lock()
		_, _ = io.WriteString(s.opts.Output, prefix+line+"\n")
		s.outMu.Unlock()
	}
}

// IsTerminal reports whether f is a terminal, for choosing colour.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == ""
}
