package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions configure StartSentinels. The zero value is three
// sentinels with a quorum of two that call a master down after a second.
type SentinelOptions struct {
	N          int           // sentinels; default 3
	Quorum     int           // default N/2+1
	DownAfter  time.Duration // down-after-milliseconds; default 1s
	Failover   time.Duration // failover-timeout; default 3s
	MasterName string        // default "mymaster"
}

// Sentinels is a group of redis-sentinel processes on 127.0.0.1 watching
// one master, stopped when the test ends. Its methods are safe for
// concurrent use.
type Sentinels struct {
	master string
	addrs  []string
}

// StartSentinels starts redis-sentinel processes monitoring master and
// returns once each answers PING. redis-sentinel must be on PATH (`make
// test` installs it); when it is not, the test fails.
func StartSentinels(t testing.TB, master *Server, o SentinelOptions) *Sentinels {
	t.Helper()
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		t.Fatalf("redistest: redis-sentinel not found: run `make test` (installs it) or apt-get install redis-sentinel (%v)", err)
	}
	o = o.withDefaults()
	s := &Sentinels{master: o.MasterName}
	for i := range o.N {
		dir := t.TempDir()
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile \"\"\n"+
			"sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s %d\n",
			port, dir, o.MasterName, master.port, o.Quorum,
			o.MasterName, o.DownAfter.Milliseconds(), o.MasterName, o.Failover.Milliseconds())
		path := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, "sentinel.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, path)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("redistest: start sentinel %d: %v", i, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				b, _ := os.ReadFile(log.Name())
				t.Logf("sentinel %d log:\n%s", i, tail(string(b), 30))
			}
		})
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.addrs = append(s.addrs, addr)
		if err := waitPing(addr, exited); err != nil {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("redistest: sentinel %d: %v\n%s", i, err, tail(string(b), 20))
		}
	}
	return s
}

func (o SentinelOptions) withDefaults() SentinelOptions {
	if o.N <= 0 {
		o.N = 3
	}
	if o.Quorum <= 0 {
		o.Quorum = o.N/2 + 1
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.Failover <= 0 {
		o.Failover = 3 * time.Second
	}
	if o.MasterName == "" {
		o.MasterName = "mymaster"
	}
	return o
}

// Addrs returns the sentinels' addresses.
func (s *Sentinels) Addrs() []string { return s.addrs }

// URL returns REDIS_URL's Sentinel form for database db of the master,
// "redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,.../mymaster/db".
func (s *Sentinels) URL(db int) string {
	return fmt.Sprintf("redis+sentinel://%s/%s/%d", strings.Join(s.addrs, ","), s.master, db)
}

// WaitReady waits until every sentinel knows the others and replicas
// replicas of the master, so that a failover can be agreed on and has a
// replica to promote.
func (s *Sentinels) WaitReady(t testing.TB, replicas int, within time.Duration) {
	t.Helper()
	want := fmt.Sprintf("slaves=%d,sentinels=%d", replicas, len(s.addrs))
	deadline := time.Now().Add(within)
	for _, addr := range s.addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := c.Info(ctx, "sentinel").Result()
			cancel()
			if err == nil && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("redistest: sentinel %s does not see %s within %v: %v\n%s", addr, want, within, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
}

// MasterAddr returns the master's address as the first sentinel that
// answers sees it.
func (s *Sentinels) MasterAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, addr := range s.addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: addr})
		hp, err := c.GetMasterAddrByName(ctx, s.master).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("no sentinel names the master: %v", lastErr)
}

// waitPing polls addr with PING until it answers, the process exits, or
// readyTimeout passes.
func waitPing(addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before answering on %s", addr)
		case <-time.After(10 * pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s within %v: %v", addr, readyTimeout, err)
		}
	}
}

// ReplicaOf makes s a replica of the server at addr and returns once the
// replication link is up.
func (s *Server) ReplicaOf(t testing.TB, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	host, port, _ := net.SplitHostPort(addr)
	if err := c.ReplicaOf(context.Background(), host, port).Err(); err != nil {
		t.Fatalf("redistest: REPLICAOF %s: %v", addr, err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: replication from %s not up within %v: %v\n%s", addr, readyTimeout, err, info)
		}
		time.Sleep(10 * pollInterval)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
