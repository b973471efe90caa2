package redistest

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()

	if err := c.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "greeting").Result(); err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v; want %q, nil", got, err, "hello")
	}
	for param, want := range map[string]string{"save": "", "appendonly": "no"} {
		got, err := c.ConfigGet(ctx, param).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", param, err)
		}
		if got[param] != want {
			t.Errorf("CONFIG GET %s = %q, want %q", param, got[param], want)
		}
	}

	addr := s.Addr()
	s.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING after Stop succeeded, want an error")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatalf("%s still accepts connections after Stop", addr)
	}
	s.Stop(t) // stopping twice is harmless

	s.Restart(t)
	if s.Addr() != addr {
		t.Errorf("Addr after Restart = %s, want %s", s.Addr(), addr)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if got, err := c.Get(ctx, "greeting").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after Restart = %q, %v; want redis.Nil: data must not survive", got, err)
	}
}

func TestRestartRunningServer(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Restart(t)
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS k after Restart = %d, %v; want 0, nil", n, err)
	}
}

func TestURL(t *testing.T) {
	s := Start(t)
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", s.URL(), err)
	}
	if opt.Addr != s.Addr() || opt.DB != 0 {
		t.Errorf("URL %q parses to addr %s db %d, want %s db 0", s.URL(), opt.Addr, opt.DB, s.Addr())
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Errorf("PING via URL: %v", err)
	}
}

func TestServersAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
	ctx := t.Context()
	if err := a.Client(t).Set(ctx, "only-in-a", 1, 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if n, err := b.Client(t).Exists(ctx, "only-in-a").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS on the other server = %d, %v; want 0, nil", n, err)
	}
}

func TestLogCaptured(t *testing.T) {
	s := Start(t)
	tail := s.logTail()
	for _, want := range []string{"--- redistest: starting", "Ready to accept connections"} {
		if !strings.Contains(tail, want) {
			t.Errorf("log tail lacks %q:\n%s", want, tail)
		}
	}
}

// TestPortTaken checks that start recognises a port it cannot have, which
// Start answers with a retry on another port.
func TestPortTaken(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: %v", err)
	}
	tests := []struct {
		name   string
		listen func(t *testing.T) int
	}{
		{
			name: "plain listener",
			listen: func(t *testing.T) int {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				return l.Addr().(*net.TCPAddr).Port
			},
		},
		{
			// The other server answers PING, so only its pid tells it apart.
			name:   "another redis-server",
			listen: func(t *testing.T) int { return Start(t).port },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{bin: bin, dir: t.TempDir(), port: tt.listen(t)}
			t.Cleanup(func() { _ = s.stop() })
			if err := s.start(); !errors.Is(err, errPortTaken) {
				t.Errorf("start on a taken port = %v, want errPortTaken\n%s", err, s.logTail())
			}
			if s.proc != nil {
				t.Error("failed start left a process behind")
			}
		})
	}
}

func TestStartWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(ft)
	}()
	<-done
	const want = "redis-server not found: run `make test` (installs it) or apt-get install redis-server"
	if !strings.Contains(ft.msg, want) {
		t.Errorf("Start without redis-server failed with %q, want it to contain %q", ft.msg, want)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, so a test can check how a helper fails.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
