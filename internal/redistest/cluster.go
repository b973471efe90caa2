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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterCreateTimeout bounds redis-cli --cluster create, which polls
	// once a second until the nodes have met.
	clusterCreateTimeout = 30 * time.Second
	// clusterReadyTimeout bounds the wait, after the create, for every node
	// to report the cluster ok with all its slots assigned and, with
	// replicas, every master's replicas in sync.
	clusterReadyTimeout = 20 * time.Second
	// clusterSlots is how many hash slots a Redis Cluster has.
	clusterSlots = 16384
)

// Cluster is a Redis Cluster of real redis-server processes on 127.0.0.1:
// masters with the hash slots spread evenly over them and, when started
// by StartClusterWithReplicas, the same number of replicas for each. Each
// node has a temporary directory of its own and persistence off; all are
// stopped, and the directories removed, when the test ends. Its methods are
// safe for concurrent use.
type Cluster struct {
	server   string // redis-server's path
	nodes    []*clusterNode
	masters  int // how many nodes are masters
	replicas int // how many replicas each master has
}

// clusterNode is one redis-server of a Cluster.
type clusterNode struct {
	dir     string // nodes.conf, redis.log
	port    int    // clients'
	busPort int    // the cluster bus's (--cluster-port)

	mu   sync.Mutex
	proc *process // the current run; replaced by a restart
}

// StartCluster starts masters (at least 3) redis-servers in cluster mode
// on free ports, joins them into one cluster with redis-cli --cluster
// create, and returns once every node reports cluster_state:ok with all
// 16384 slots assigned. It fails the test if redis-server or redis-cli is
// missing (`make test` installs them), or if the cluster does not form.
// Each node's bus port is chosen too (--cluster-port, Redis 7.0 or later),
// as port+10000 is not always free or even a port. It is
// StartClusterWithReplicas with no replicas.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	return StartClusterWithReplicas(t, masters, 0)
}

// StartClusterWithReplicas starts a cluster as StartCluster does, of
// masters*(1+replicasPerMaster) nodes: redis-cli --cluster create
// --cluster-replicas replicasPerMaster makes masters of them masters, with
// the slots, and the others their replicas, replicasPerMaster each. It
// returns once, besides, every node knows every master's replicas (CLUSTER
// NODES), every master has its replicas connected and in sync (INFO
// replication: connected_slaves, each state=online) and every replica's
// link to its master is up; so a WAIT on a master counts them all at once.
// Which node is a replica of which master is redis-cli's choice: ask
// ReplicasOf. All run on one host, so redis-cli warns that replicas share
// their master's host.
func StartClusterWithReplicas(t testing.TB, masters, replicasPerMaster int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: StartClusterWithReplicas(%d, %d): a Redis Cluster needs at least 3 masters", masters, replicasPerMaster)
	}
	if replicasPerMaster < 0 {
		t.Fatalf("redistest: StartClusterWithReplicas(%d, %d): a negative number of replicas", masters, replicasPerMaster)
	}
	began := time.Now()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found: run `make test` (installs it) or apt-get install redis-server (%v)", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli not found: run `make test` (installs it) or apt-get install redis-tools (%v)", err)
	}
	c := &Cluster{server: server, masters: masters, replicas: replicasPerMaster}
	for range masters * (1 + replicasPerMaster) {
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
	t.Logf("redistest: cluster ready in %v (%d masters, replicas per master: %d)",
		time.Since(began).Round(time.Millisecond), masters, replicasPerMaster)
	return c
}

// Addrs returns the nodes' addresses, "127.0.0.1:port", replicas
// included, in the order they were started.
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

// ReplicasOf returns the addresses of the replicas of the master at
// masterAddr, sorted, as that master's CLUSTER NODES says now (after a
// failover too). It fails the test if masterAddr is not a master of c.
func (c *Cluster) ReplicasOf(t testing.TB, masterAddr string) []string {
	t.Helper()
	if !slices.Contains(c.Addrs(), masterAddr) {
		t.Fatalf("redistest: ReplicasOf(%s): not a node of the cluster (%v)", masterAddr, c.Addrs())
	}
	rdb := redis.NewClient(&redis.Options{Addr: masterAddr, MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	text, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatalf("redistest: ReplicasOf(%s): CLUSTER NODES: %v", masterAddr, err)
	}
	nodes, err := parseClusterNodes(text)
	if err != nil {
		t.Fatalf("redistest: ReplicasOf(%s): %v", masterAddr, err)
	}
	var me clusterNodeLine
	for _, n := range nodes {
		if n.has("myself") {
			me = n
		}
	}
	if !me.has("master") {
		t.Fatalf("redistest: ReplicasOf(%s): not a master (CLUSTER NODES flags %v)", masterAddr, me.flags)
	}
	replicas := []string{}
	for _, n := range nodes {
		if n.master == me.id {
			replicas = append(replicas, n.addr)
		}
	}
	slices.Sort(replicas)
	return replicas
}

// Freeze stops the node at addr with SIGSTOP, as a hung Redis: it accepts
// connections but answers nothing, and a frozen replica confirms no
// writes to its master's WAIT. It returns a function that resumes it
// (SIGCONT); the node is resumed when the test ends in any case. Past the
// cluster's node timeout (2 s) the other nodes flag it failing, and a
// frozen master's replica may take its place.
func (c *Cluster) Freeze(t testing.TB, addr string) (thaw func()) {
	t.Helper()
	return c.node(t, "Freeze", addr).process().freeze(t)
}

// node returns the node at addr, or fails the test saying which call
// (what) named a node that is not the cluster's.
func (c *Cluster) node(t testing.TB, what, addr string) *clusterNode {
	t.Helper()
	i := slices.Index(c.Addrs(), addr)
	if i < 0 {
		t.Fatalf("redistest: %s(%s): not a node of the cluster (%v)", what, addr, c.Addrs())
	}
	return c.nodes[i]
}

// Kill kills the node at addr with SIGKILL, as a crash would, and returns
// once its process has exited: its port refuses connections, and what it
// held in memory and had not yet sent to its replicas is gone (persistence
// is off). Past the cluster's node timeout (2 s) the other nodes flag it
// failed, and a killed master's replica takes its place. Killing a killed
// node does nothing. It fails the test if addr is not a node of c or the
// process does not exit.
func (c *Cluster) Kill(t testing.TB, addr string) {
	t.Helper()
	if err := c.node(t, "Kill", addr).process().kill(); err != nil {
		t.Fatalf("redistest: Kill(%s): %v", addr, err)
	}
}

// Restart starts again the node at addr that Kill killed, on the same
// ports and with the same nodes.conf, as a crashed node brought back: it
// rejoins the cluster as the node it was, and a master whose replica took
// its place in the meantime comes back as that replica's replica (the
// cluster's newer configuration wins). It returns once the node answers;
// it may not be in sync yet. Restarting a running node does nothing. It
// fails the test if addr is not a node of c or the node does not come up
// (another process may have taken its port meanwhile).
func (c *Cluster) Restart(t testing.TB, addr string) {
	t.Helper()
	n := c.node(t, "Restart", addr)
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.proc.exited:
	default:
		return
	}
	p, err := n.launch(c.server)
	if err != nil {
		t.Fatalf("redistest: Restart(%s): %v\n%s", addr, err, n.logTail())
	}
	n.proc = p
}

// create joins the nodes into one cluster, each master with its share of
// the slots and its replicas, and returns what redis-cli printed.
func (c *Cluster) create(cli string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(c.replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("no result within %v: %w", clusterCreateTimeout, ctx.Err())
	}
	return string(out), err
}

// waitReady polls every node until it is ready (nodeReady), or within
// passes.
func (c *Cluster) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, n := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1})
		err := pollNode(n.process().exited, deadline, func(ctx context.Context) error { return c.nodeReady(ctx, rdb) })
		rdb.Close()
		if err != nil {
			return fmt.Errorf("cluster node %s not ready within %v: %w", n.addr(), within, err)
		}
	}
	return nil
}

// nodeReady returns nil once the node of rdb reports the cluster ok, all
// slots assigned and every node known (CLUSTER INFO); knows c.masters
// masters with slots, each with c.replicas replicas, and no node failing
// or unlinked (CLUSTER NODES); and, as a master, has its c.replicas
// replicas connected and online or, as a replica, its link to its master
// up (INFO replication). Otherwise it says what is missing.
func (c *Cluster) nodeReady(ctx context.Context, rdb *redis.Client) error {
	info, err := rdb.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	if err := infoLacks(info, map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.nodes)),
	}); err != nil {
		return err
	}
	text, err := rdb.ClusterNodes(ctx).Result()
	if err != nil {
		return err
	}
	nodes, err := parseClusterNodes(text)
	if err != nil {
		return err
	}
	if err := topologyLacks(nodes, c.masters, c.replicas); err != nil {
		return err
	}
	repl, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	return replicationLacks(repl, c.replicas)
}

// pollNode calls ready until it returns nil, the process exits, or
// deadline passes; then it returns ready's last error.
func pollNode(exited <-chan struct{}, deadline time.Time, ready func(context.Context) error) error {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
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
	got := infoFields(info)
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("CLUSTER INFO %s:%s, want %s", k, got[k], v)
		}
	}
	return nil
}

// infoFields returns the "name:value" lines of an INFO or CLUSTER INFO
// reply as a map.
func infoFields(info string) map[string]string {
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			got[k] = v
		}
	}
	return got
}

// replicationLacks returns nil if INFO replication's reply info is a
// master's with replicas replicas connected, each state=online, or a
// replica's with master_link_status:up; otherwise it says what is not so.
func replicationLacks(info string, replicas int) error {
	got := infoFields(info)
	switch got["role"] {
	case "master":
		if n := got["connected_slaves"]; n != strconv.Itoa(replicas) {
			return fmt.Errorf("INFO replication connected_slaves:%s, want %d", n, replicas)
		}
		for i := range replicas {
			name := "slave" + strconv.Itoa(i)
			if !slices.Contains(strings.Split(got[name], ","), "state=online") {
				return fmt.Errorf("INFO replication %s:%s, want state=online", name, got[name])
			}
		}
		return nil
	case "slave":
		if got["master_link_status"] != "up" {
			return fmt.Errorf("INFO replication master_link_status:%s, want up", got["master_link_status"])
		}
		return nil
	}
	return fmt.Errorf("INFO replication role:%s, want master or slave", got["role"])
}

// clusterNodeLine is one line of CLUSTER NODES.
type clusterNodeLine struct {
	id     string
	addr   string   // "ip:port", without "@busport" and ",hostname"
	flags  []string // "myself", "master", "slave", "fail?", ...
	master string   // a replica's master's id; "-" for a master
	link   string   // "connected" or "disconnected"
	slots  bool     // whether it serves any slot
}

// has reports whether n carries flag.
func (n clusterNodeLine) has(flag string) bool { return slices.Contains(n.flags, flag) }

// parseClusterNodes reads CLUSTER NODES' reply: per node, "<id>
// <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv>
// <config-epoch> <link-state> <slot> <slot> ...".
func parseClusterNodes(text string) ([]clusterNodeLine, error) {
	var nodes []clusterNodeLine
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES line %q: %d fields, want at least 8", strings.TrimSpace(line), len(f))
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",")
		nodes = append(nodes, clusterNodeLine{
			id: f[0], addr: addr, flags: strings.Split(f[2], ","), master: f[3], link: f[7], slots: len(f) > 8,
		})
	}
	return nodes, nil
}

// topologyLacks returns nil if nodes, one node's CLUSTER NODES, show
// masters masters serving slots, each with replicas replicas, and every
// node linked and none failing; otherwise it says what is not so.
func topologyLacks(nodes []clusterNodeLine, masters, replicas int) error {
	ids := map[string]int{} // master id -> its replicas
	for _, n := range nodes {
		for _, bad := range []string{"fail", "fail?", "handshake", "noaddr"} {
			if n.has(bad) {
				return fmt.Errorf("CLUSTER NODES: %s %s flagged %s", n.id, n.addr, bad)
			}
		}
		if n.link != "connected" {
			return fmt.Errorf("CLUSTER NODES: %s %s link %s", n.id, n.addr, n.link)
		}
		if n.has("master") && n.slots {
			ids[n.id] = 0
		}
	}
	if len(ids) != masters {
		return fmt.Errorf("CLUSTER NODES: %d masters with slots, want %d", len(ids), masters)
	}
	for _, n := range nodes {
		if n.has("slave") {
			if _, ok := ids[n.master]; !ok {
				return fmt.Errorf("CLUSTER NODES: replica %s %s of %s, not a master with slots", n.id, n.addr, n.master)
			}
			ids[n.master]++
		}
	}
	for id, got := range ids {
		if got != replicas {
			return fmt.Errorf("CLUSTER NODES: master %s has %d replicas, want %d", id, got, replicas)
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
	p, err := n.launch(bin)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return nil
}

// process returns the node's current run.
func (n *clusterNode) process() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// launch runs redis-server in cluster mode on the node's ports, with its
// nodes.conf as it is, and waits until it answers.
func (n *clusterNode) launch(bin string) (*process, error) {
	return launch(bin, n.dir, n.logPath(), n.port, fmt.Sprintf("on port %d, cluster bus %d", n.port, n.busPort),
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
		"--cluster-node-timeout", "2000",
		// A replica's full sync starts at once, not after the default
		// 5 s for more replicas to join the transfer.
		"--repl-diskless-sync-delay", "0",
		"--cluster-port", strconv.Itoa(n.busPort),
	)
}

// stop kills the node, if it runs, at the end of the test, and logs its
// log's tail when the test failed: the nodes' logs are where a cluster
// that did not form, or lost a node, says why.
func (n *clusterNode) stop(t testing.TB) {
	if p := n.process(); p != nil {
		if err := p.kill(); err != nil {
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
