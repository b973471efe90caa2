package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/jobs"
)

// TestClusterFailover runs the fleet (the bot and a worker, built
// binaries) on REDIS_URL=redis+cluster://... against a Redis Cluster of
// three masters with a replica each, with REDIS_WAIT_REPLICAS=1; kills
// with SIGKILL, while jobs flow, the master of the default queue's slot
// (jobs:{default}); and checks that the fleet continues on the promoted
// replica without a restart of either process: the worker's heartbeats go
// on, the bot writes jobs to the new master, every job answered 202 is on
// the cluster and runs, and `botfleet status` reads the fleet.
//
// The promoted replica has no replica of its own (a Redis Cluster moves a
// replica to an orphaned master only from a master with two or more), so
// WAIT 1 cannot succeed there: the bot answers 503 "not confirmed" (the
// job is on the new master and runs) until the killed node, restarted as
// a crashed node would be, rejoins as the new master's replica; then it
// accepts again. It logs how long each step took.
//
// The dead master answers nothing, so no MOVED tells the processes' cluster
// clients of the promotion: they find it by reloading their slot map, which
// go-redis does only once the map is older than ClusterStateReloadInterval.
// With go-redis's default (60 s) rather than config.NewClient's (1 s) the
// bot and the worker keep sending the queue to the dead master past this
// test's deadlines.
func TestClusterFailover(t *testing.T) {
	began := time.Now()
	cluster := redistest.StartClusterWithReplicas(t, 3, 1)
	url := cluster.URL()
	port := testbin.FreePort(t)
	botURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	bot := testbin.Start(t, []string{"REDIS_URL=" + url, "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(port),
		"REDIS_WAIT_REPLICAS=1", "REDIS_WAIT_TIMEOUT=1", "REDIS_TIMEOUT=2"}, "bot")
	const workerID = "worker-cf1"
	worker := testbin.Start(t, []string{"REDIS_URL=" + url, "METRICS_ADDR=127.0.0.1", "METRICS_PORT=0", "WORKER_ID=" + workerID,
		"WORKER_CONCURRENCY=4", "HEARTBEAT_INTERVAL=0.25", "HEARTBEAT_TTL=10", "JOB_VISIBILITY_TIMEOUT=2", "LOG_DIR=" + t.TempDir()}, "worker")
	testbin.WaitFor(t, 20*time.Second, "the bot's /livez", func() bool {
		code, _ := get(t, botURL+"/livez", "")
		return code == http.StatusOK
	})

	// The test's own client, independent of the fleet's options: it
	// reloads the slot map often, so that it follows the failover at once.
	watch := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), ClusterStateReloadInterval: 100 * time.Millisecond})
	defer watch.Close()
	heartbeatKey := "worker:heartbeat:" + workerID
	testbin.WaitFor(t, 20*time.Second, "the worker's heartbeat", func() bool {
		return watch.Exists(context.Background(), heartbeatKey).Val() == 1
	})

	ctx := context.Background()
	slot, err := watch.ClusterKeySlot(ctx, "jobs:{default}").Result()
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT jobs:{default}: %v", err)
	}
	victim := slotMaster(t, cluster.Addrs()[0], slot)
	replicas := cluster.ReplicasOf(t, victim)
	if len(replicas) != 1 {
		t.Fatalf("the master %s of jobs:{default} has replicas %v, want 1", victim, replicas)
	}
	heir := replicas[0]
	heartbeatSlot := watch.ClusterKeySlot(ctx, heartbeatKey).Val()
	t.Logf("jobs:{default} is in slot %d on %s (replica %s); %s in slot %d on %s",
		slot, victim, heir, heartbeatKey, heartbeatSlot, slotMaster(t, cluster.Addrs()[0], heartbeatSlot))

	load := startLoad(botURL, 6)
	defer load.stop()
	testbin.WaitFor(t, 20*time.Second, "50 jobs accepted", func() bool { return load.count(time.Time{}) >= 50 })
	// A second of steady load, so that the kill lands in full flow (a
	// duration of load, not a wait for background work).
	steady := time.Now()
	time.Sleep(time.Second)
	rate := load.count(steady)

	killed := time.Now()
	cluster.Kill(t, victim)
	killedAt := float64(killed.UnixMicro()) / 1e6

	// The promotion (the heir a master, every surviving node's
	// cluster_state ok) and the first heartbeat after the kill, watched
	// together: the keys hold only the latest beat. A beat writes the
	// worker's hash, its score in worker:index and an entry of
	// worker:status, which on a cluster are in three slots, perhaps on
	// three masters: the hash may land while the index waits for the
	// promotion (the beat counts as failed then).
	var promoted, heartbeat, indexed time.Duration
	var promotion string // why not yet, for the failure message
	defer func() {
		if t.Failed() {
			t.Logf("when the test failed: promotion: %q; heartbeat hash after %v, worker:index after %v", promotion, heartbeat, indexed)
		}
	}()
	since := func(unix float64) time.Duration { return time.Duration((unix - killedAt) * float64(time.Second)) }
	testbin.WaitFor(t, 30*time.Second, "the promotion of "+heir+" and a heartbeat after the kill", func() bool {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if heartbeat == 0 {
			if ts, err := watch.HGet(c, heartbeatKey, "timestamp").Float64(); err == nil && ts > killedAt {
				heartbeat = since(ts)
			}
		}
		if indexed == 0 {
			if ts, err := watch.ZScore(c, "worker:index", workerID).Result(); err == nil && ts > killedAt {
				indexed = since(ts)
			}
		}
		if promoted == 0 {
			if promotion = promotionLacks(cluster.Addrs(), victim, heir); promotion == "" {
				promoted = time.Since(killed)
			}
		}
		return promoted != 0 && heartbeat != 0 && indexed != 0
	})
	t.Logf("%s promoted %v after the SIGKILL of %s (node timeout 2 s); the worker's heartbeat hash (slot %d) written again %v after it, "+
		"its score in worker:index (slot %d) %v after it",
		heir, promoted.Round(time.Millisecond), victim, heartbeatSlot, heartbeat.Round(time.Millisecond),
		watch.ClusterKeySlot(ctx, "worker:index").Val(), indexed.Round(time.Millisecond))

	// The bot writes to the new master: a job answered 202, or 503 and
	// on the cluster nonetheless (not confirmed by a replica: there is
	// none), for a request sent after the kill.
	var reached answer
	scanned := 0
	testbin.WaitFor(t, 30*time.Second, "a job of the bot on the promoted master", func() bool {
		load.mu.Lock()
		answers := load.answers[scanned:]
		scanned = len(load.answers)
		load.mu.Unlock()
		var candidates []answer
		for _, a := range answers {
			if a.sent.After(killed) && a.id != "" && (a.code == http.StatusAccepted || a.code == http.StatusServiceUnavailable) {
				candidates = append(candidates, a)
			}
		}
		ids := make([]string, len(candidates))
		for i, a := range candidates {
			ids[i] = a.id
		}
		there := onCluster(t, watch, ids)
		for _, a := range candidates {
			if there[a.id] && (reached.recv.IsZero() || a.recv.Before(reached.recv)) {
				reached = a
			}
		}
		return !reached.recv.IsZero()
	})
	t.Logf("the first job the bot wrote to the promoted master: sent %v after the SIGKILL, answered %d %v after it",
		reached.sent.Sub(killed).Round(time.Millisecond), reached.code, reached.recv.Sub(killed).Round(time.Millisecond))
	// Until a replica is back, the bot answers 503: queued, not confirmed.
	testbin.WaitFor(t, 15*time.Second, `the bot's 503s "not confirmed by replicas"`, func() bool {
		return strings.Contains(bot.Output(), `"message":"job not confirmed by replicas"`)
	})

	// The killed node back, as a supervisor would restart it: it rejoins
	// as the replica of its heir, and WAIT 1 can succeed again.
	restarting := time.Now()
	acceptedWithoutReplica := load.count(killed)
	cluster.Restart(t, victim)
	testbin.WaitFor(t, 30*time.Second, victim+" a replica of "+heir, func() bool {
		rs := cluster.ReplicasOf(t, heir)
		return len(rs) == 1 && rs[0] == victim
	})
	rejoined := time.Since(restarting)
	var accept time.Time
	testbin.WaitFor(t, 30*time.Second, "a job accepted after the restart", func() bool {
		var ok bool
		accept, ok = load.firstAcceptedAfter(killed)
		return ok
	})
	testbin.WaitFor(t, 20*time.Second, "5 more jobs accepted", func() bool { return load.count(restarting) >= 5 })
	load.stop()
	t.Logf("%s restarted: a replica of %s %v later; the bot accepted a job again %v after the restart, %v after the SIGKILL",
		victim, heir, rejoined.Round(time.Millisecond), accept.Sub(restarting).Round(time.Millisecond), accept.Sub(killed).Round(time.Millisecond))
	if acceptedWithoutReplica != 0 {
		t.Errorf("%d jobs sent after the kill were answered 202 before the killed node rejoined as a replica; "+
			"the promoted master had no replica to confirm them (WAIT 1)", acceptedWithoutReplica)
	}

	// Every job answered 202 is on the cluster and runs; so does every
	// job answered 503 that is on the cluster nonetheless.
	accepted := load.acceptedIDs()
	var refused []string // with an id
	unavailable := 0     // 503s
	load.mu.Lock()
	for _, a := range load.answers {
		if a.code != http.StatusAccepted && a.id != "" {
			refused = append(refused, a.id)
		}
		if a.code == http.StatusServiceUnavailable {
			unavailable++
		}
	}
	load.mu.Unlock()
	there := onCluster(t, watch, refused)
	queuedRefused := 0
	for _, id := range refused {
		if there[id] {
			queuedRefused++
		}
	}
	lost, notDone := 0, []string(nil)
	testbin.WaitFor(t, 30*time.Second, "every accepted job done", func() bool {
		var statuses map[string]string
		statuses, lost = jobStatuses(t, watch, accepted)
		notDone = nil
		for id, st := range statuses {
			if st != jobs.StatusSucceeded {
				notDone = append(notDone, id+"="+st)
			}
		}
		for id, queued := range there {
			if queued {
				if st := watch.HGet(ctx, "job:{default}:"+id, "status").Val(); st != jobs.StatusSucceeded {
					notDone = append(notDone, id+"="+st+" (answered 503)")
				}
			}
		}
		return len(notDone) == 0
	})
	t.Logf("%d jobs/s accepted before the kill; %d jobs answered 202 (%d of them sent after the kill), %d of them lost; "+
		"%d answered 503 and %d otherwise (no answer, ...); %d refused with an id, %d of those on the cluster all the same, and run; the bot logged %s",
		rate, len(accepted), load.count(killed), lost, unavailable, load.refusedCount()-unavailable, len(refused), queuedRefused, botOutcomes(bot.Output()))
	if lost != 0 {
		t.Errorf("%d jobs answered 202 were lost with REDIS_WAIT_REPLICAS=1; want 0", lost)
	}

	status := testbin.Start(t, []string{"REDIS_URL=" + url}, "status", "-o", "json")
	var fleet struct {
		Summary struct{ Alive int } `json:"summary"`
	}
	code := status.Wait(t, 15*time.Second)
	out := status.Output()
	if err := json.Unmarshal([]byte(withoutLogLines(out)), &fleet); code != 0 || err != nil || fleet.Summary.Alive != 1 {
		t.Errorf("botfleet status on the cluster URL: exit %d, %d alive, %v; want 0, 1:\n%s", code, fleet.Summary.Alive, err, out)
	}
	for name, p := range map[string]*testbin.Proc{"bot": bot, "worker": worker} {
		select {
		case <-p.Done():
			t.Errorf("the %s exited during the failover (%v); want it running throughout", name, p.Cmd.ProcessState)
		default:
		}
	}
	if code, _ := get(t, botURL+"/livez", ""); code != http.StatusOK {
		t.Errorf("the bot's /livez = %d after the failover, want 200", code)
	}
	t.Logf("the worker logged: %s", workerRecoveries(worker.Output()))
	t.Logf("the cluster failover test took %v", time.Since(began).Round(time.Millisecond))
}

// slotMaster returns the address of the master serving slot, as the node
// at addr's CLUSTER SHARDS says.
func slotMaster(t *testing.T, addr string, slot int64) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SHARDS on %s: %v", addr, err)
	}
	for _, s := range shards {
		for _, r := range s.Slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) {
				for _, n := range s.Nodes {
					if n.Role == "master" && n.Health == "online" {
						return fmt.Sprintf("%s:%d", n.IP, n.Port)
					}
				}
			}
		}
	}
	t.Fatalf("CLUSTER SHARDS on %s: no online master serves slot %d: %+v", addr, slot, shards)
	return ""
}

// promotionLacks returns "" once heir says it is a master and every node
// of addrs but dead says cluster_state:ok; otherwise what is not so yet.
func promotionLacks(addrs []string, dead, heir string) string {
	for _, addr := range addrs {
		if addr == dead {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		info, err := rdb.ClusterInfo(ctx).Result()
		var repl string
		if err == nil && addr == heir {
			repl, err = rdb.Info(ctx, "replication").Result()
		}
		cancel()
		rdb.Close()
		switch {
		case err != nil:
			return addr + ": " + err.Error()
		case !strings.Contains(info, "cluster_state:ok"):
			return addr + ": not cluster_state:ok"
		case addr == heir && !strings.Contains(repl, "role:master"):
			return addr + ": not role:master yet"
		}
	}
	return ""
}

// onCluster reports which of the job ids have their hash on the cluster.
func onCluster(t *testing.T, rdb *redis.ClusterClient, ids []string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmds := make([]*redis.IntCmd, len(ids))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Exists(ctx, "job:{default}:"+id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EXISTS of %d job hashes: %v", len(ids), err)
	}
	there := make(map[string]bool, len(ids))
	for i, id := range ids {
		there[id] = cmds[i].Val() == 1
	}
	return there
}

// jobStatuses returns the status of each of the job ids on the cluster,
// and how many have no hash there.
func jobStatuses(t *testing.T, rdb *redis.ClusterClient, ids []string) (map[string]string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, "job:{default}:"+id, "status")
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		t.Fatalf("HGET status of %d jobs: %v", len(ids), err)
	}
	statuses, missing := make(map[string]string, len(ids)), 0
	for i, id := range ids {
		switch st, err := cmds[i].Result(); {
		case err == redis.Nil:
			missing++
		default:
			statuses[id] = st
		}
	}
	return statuses, missing
}

// botOutcomes counts the bot's log lines on submissions that failed.
func botOutcomes(out string) string {
	var parts []string
	for _, msg := range []string{"job not confirmed by replicas", "job submission outcome unknown", "job not queued"} {
		parts = append(parts, fmt.Sprintf("%q %d", msg, strings.Count(out, `"message":"`+msg+`"`)))
	}
	return strings.Join(parts, ", ")
}

// workerRecoveries sums up the worker's log lines on the outage: its
// heartbeat's and its job consumer's.
func workerRecoveries(out string) string {
	var parts []string
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if !strings.HasPrefix(line, `{"`) || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch msg := fmt.Sprint(m["message"]); msg {
		case "heartbeat failed; retrying with backoff", "redis unavailable; jobs wait until it answers":
			parts = append(parts, fmt.Sprintf("%q (%v)", msg, m["error"]))
		case "heartbeat recovered", "redis answered again":
			parts = append(parts, fmt.Sprintf("%q after an outage of %v", msg, m["outage"]))
		}
	}
	if len(parts) == 0 {
		return "no outage"
	}
	return strings.Join(parts, "; ")
}
