package redistest

import (
	"bufio"
	"context"
	"errors"
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

const (
	// clusterCreateTimeout bounds redis-cli --cluster create, which polls
	// once a second until the nodes have met.
	clusterCreateTimeout = 30 * time.Second
	// clusterReadyTimeout bounds the wait, after the create, for every node
	// to report the cluster ok with all its slots assigned.
	clusterReadyTimeout = 20 * time.Second
	// clusterSlots is how many hash slots a Redis Cluster has.
	clusterSlots = 16384
)

// Cluster is a Redis Cluster of real redis-server processes on 127.0.0.1:
// masters only, no replicas, the hash slots spread evenly over them. Each
// node has a temporary directory of its own and persistence off; all are
// stopped, and the directories removed, when the test ends. Its methods are
// safe for concurrent use.
type Cluster struct {
	nodes []*clusterNode
}

// clusterNode is one redis-server of a Cluster.
type clusterNode struct {
	dir     string // nodes.conf, redis.log
	port    int    // clients'
	busPort int    // the cluster bus's (--cluster-port)
	proc    *process
}

// StartCluster starts masters (at least 3) redis-servers in cluster mode
// on free ports, joins them into one cluster with redis-cli --cluster
// create, and returns once every node reports cluster_state:ok with all
// 16384 slots assigned. It fails the test if redis-server or redis-cli is
// missing (`make test` installs them), or if the cluster does not form.
// Each node's bus port is chosen too (--cluster-port, Redis 7.0 or later),
// as port+10000 is not always free or even a port.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: StartCluster(%d): a Redis Cluster needs at least 3 masters", masters)
	}
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found: run `make test` (installs it) or apt-get install redis-server (%v)", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found: run `make test` (installs it) or apt-get install redis-tools (%v)", err)
	}
	c := &Cluster{}
	for range masters {
		n := &clusterNode{dir: t.TempDir()}
		// Registered after TempDir's own cleanup, so it runs first.
		t.Cleanup(func() { n.stop(t) })
		if err := n.startOnFreePorts(server); err != nil {
			t.Fatalf("redistest: cluster node: %v", err)
		}
		c.nodes = append(c.nodes, n)
	}
	if out, err := c.create(cli); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitReady(clusterReadyTimeout); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return c
}

// Addrs returns the nodes' addresses, "127.0.0.1:port", in the order they
// were started.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// URL returns REDIS_URL's Cluster form naming every node,
// "redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/".
func (c *Cluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/"
}

// Client returns a go-redis cluster client of c with default options,
// closed when the test ends. Tests that need other options can build their
// own from Addrs or URL.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// create joins the nodes into one cluster, each a master of its share of
// the slots, and returns what redis-cli printed.
func (c *Cluster) create(cli string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("no result within %v: %w", clusterCreateTimeout, ctx.Err())
	}
	return string(out), err
}

// waitReady polls every node's CLUSTER INFO until each reports the
// cluster ok, all slots assigned and every node known, or within passes.
func (c *Cluster) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.nodes)),
	}
	for _, n := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1})
		err := pollClusterInfo(rdb, n.proc.exited, want, deadline)
		rdb.Close()
		if err != nil {
			return fmt.Errorf("cluster node %s not ready within %v: %w", n.addr(), within, err)
		}
	}
	return nil
}

// pollClusterInfo polls rdb's CLUSTER INFO until it has every field of
// want, the process exits, or deadline passes.
func pollClusterInfo(rdb *redis.Client, exited <-chan struct{}, want map[string]string, deadline time.Time) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := rdb.ClusterInfo(ctx).Result()
		cancel()
		if err == nil {
			err = infoLacks(info, want)
		}
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-time.After(10 * pollInterval):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

// infoLacks returns an error naming the first field of want that the
// "name:value" lines of info do not have.
func infoLacks(info string, want map[string]string) error {
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			got[k] = v
		}
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("CLUSTER INFO %s:%s, want %s", k, got[k], v)
		}
	}
	return nil
}

// startOnFreePorts starts the node on free ports, trying fresh ones when
// another process took those it picked.
func (n *clusterNode) startOnFreePorts(bin string) error {
	for attempt := 1; ; attempt++ {
		var err error
		if n.port, err = freePort(); err != nil {
			return err
		}
		if n.busPort, err = freePort(); err != nil {
			return err
		}
		err = n.start(bin)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == startAttempts {
			return err
		}
	}
}

// start runs redis-server in cluster mode and waits until it answers. A
// nodes.conf left by a failed attempt is removed first, so the node starts
// as a new one alone. On failure the process is gone when start returns.
func (n *clusterNode) start(bin string) error {
	conf := filepath.Join(n.dir, "nodes.conf")
	if err := os.Remove(conf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	logFile, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "--- redistest: starting %s on port %d, cluster bus %d\n", bin, n.port, n.busPort)
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(n.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", n.dir,
		"--daemonize", "no",
		"--logfile", "", // stdout, which is the log file
		"--cluster-enabled", "yes",
		"--cluster-config-file", conf,
		"--cluster-node-timeout", "2000",
		"--cluster-port", strconv.Itoa(n.busPort),
	)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, logPath: n.logPath(), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	if err := p.waitReady(n.port); err != nil {
		_ = p.kill()
		return err
	}
	n.proc = p
	return nil
}

// stop kills the node, if it runs, at the end of the test, and logs its
// log's tail when the test failed: the nodes' logs are where a cluster
// that did not form, or lost a node, says why.
func (n *clusterNode) stop(t testing.TB) {
	if n.proc != nil {
		if err := n.proc.kill(); err != nil {
			t.Errorf("redistest: cluster node %s: %v", n.addr(), err)
		}
	}
	if t.Failed() {
		t.Logf("cluster node %s: %s", n.addr(), n.logTail())
	}
}

func (n *clusterNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

func (n *clusterNode) logPath() string { return filepath.Join(n.dir, "redis.log") }

// logTail returns the last lines of the node's log, for failure messages.
func (n *clusterNode) logTail() string {
	data, err := os.ReadFile(n.logPath())
	if err != nil {
		return fmt.Sprintf("(no redis-server log: %v)", err)
	}
	return "redis-server log (" + n.logPath() + "), last lines:\n\t" + strings.ReplaceAll(tail(string(data), 20), "\n", "\n\t")
}
