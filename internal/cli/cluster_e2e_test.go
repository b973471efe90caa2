package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// TestFleetOnRedisCluster runs the fleet (the bot and two workers, built
// binaries) on REDIS_URL=redis+cluster://... against a real three-master
// Redis Cluster: jobs flow through the bot's web API, a failing job is
// dead-lettered, a job whose worker is killed mid-run is finished by the
// other, the fleet view and `botfleet status` read the workers, and no
// process meets a CROSSSLOT error.
func TestFleetOnRedisCluster(t *testing.T) {
	began := time.Now()
	cluster := redistest.StartCluster(t, 3)
	rdb := cluster.Client(t)
	ctx := context.Background()
	url := cluster.URL()
	env := []string{"REDIS_URL=" + url, "METRICS_ADDR=127.0.0.1", "LOG_DIR=" + t.TempDir(),
		"HEARTBEAT_INTERVAL=0.5", "HEARTBEAT_TTL=2", "JOB_VISIBILITY_TIMEOUT=2", "JOB_RETRY_BACKOFF=0.1", "SHUTDOWN_GRACE=0.5"}

	port := testbin.FreePort(t)
	botURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	procs := []*testbin.Proc{testbin.Start(t, append(env, "METRICS_PORT="+strconv.Itoa(port)), "bot")}
	workers := map[string]*testbin.Proc{}
	for _, id := range []string{"worker-c1", "worker-c2"} {
		workers[id] = testbin.Start(t, append(env, "METRICS_PORT=0", "WORKER_ID="+id, "WORKER_CONCURRENCY=4"), "worker")
		procs = append(procs, workers[id])
	}
	testbin.WaitFor(t, 20*time.Second, "the bot's /livez", func() bool {
		code, _ := get(t, botURL+"/livez", "")
		return code == http.StatusOK
	})
	testbin.WaitFor(t, 20*time.Second, "both workers' heartbeats", func() bool {
		// One key a command: the two hashes are in different slots.
		return rdb.Exists(ctx, "worker:heartbeat:worker-c1").Val()+rdb.Exists(ctx, "worker:heartbeat:worker-c2").Val() == 2
	})

	submit := func(body string) string {
		t.Helper()
		resp, err := http.Post(botURL+"/api/jobs", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /api/jobs %s: %d %v", body, resp.StatusCode, m)
		}
		return m["id"].(string)
	}
	job := func(id string) map[string]any {
		_, body := get(t, botURL+"/api/jobs/"+id, "")
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return m
	}
	waitStatus := func(id, status string) map[string]any {
		t.Helper()
		var last map[string]any
		testbin.WaitFor(t, 30*time.Second, "job "+id+" to be "+status, func() bool {
			last = job(id)
			return last["status"] == status
		})
		return last
	}

	var ids []string
	for i := range 30 {
		ids = append(ids, submit(fmt.Sprintf(`{"type":"echo","payload":{"n":%d}}`, i)))
	}
	ran := map[string]int{}
	for _, id := range ids {
		ran[fmt.Sprint(waitStatus(id, "succeeded")["worker"])]++
	}
	t.Logf("30 echo jobs run by %v", ran)
	if n := rdb.Exists(ctx, "job:{default}:"+ids[0]).Val(); n != 1 {
		t.Errorf("job:{default}:%s missing: the job hash carries the queue's hash tag on a cluster", ids[0])
	}

	failed := submit(`{"type":"fail","payload":{"message":"boom"}}`)
	if info := waitStatus(failed, "failed"); info["attempts"] != 3.0 {
		t.Errorf("failed job: %v, want 3 attempts", info)
	}
	dead := rdb.XRange(ctx, "jobs:{default}:dead", "-", "+").Val()
	if len(dead) != 1 || !strings.Contains(fmt.Sprint(dead[0].Values), failed) {
		t.Errorf("dead letters %v, want %s", dead, failed)
	}

	status := testbin.Start(t, []string{"REDIS_URL=" + url}, "status", "-o", "json")
	var fleet struct {
		Summary struct{ Alive int } `json:"summary"`
	}
	code := status.Wait(t, 15*time.Second)
	if err := json.Unmarshal([]byte(withoutLogLines(status.Output())), &fleet); code != 0 || err != nil || fleet.Summary.Alive != 2 {
		t.Errorf("botfleet status on the cluster URL: exit %d, %d alive, %v; want 0, 2:\n%s", code, fleet.Summary.Alive, err, status.Output())
	}
	_, body := get(t, botURL+"/api/fleet/summary", "")
	if !strings.Contains(string(body), `"alive":2`) {
		t.Errorf("GET /api/fleet/summary = %s, want 2 alive", body)
	}

	// kill -9 mid-job: the other worker claims and finishes it.
	long := submit(`{"type":"sleep","payload":{"duration":"1.5s"}}`)
	victim := fmt.Sprint(waitStatus(long, "running")["worker"])
	workers[victim].Signal(t, syscall.SIGKILL)
	workers[victim].Wait(t, 5*time.Second)
	if info := waitStatus(long, "succeeded"); info["worker"] == victim {
		t.Errorf("job %s finished by the killed worker %s", long, victim)
	}

	for _, p := range procs {
		if out := p.Output(); strings.Contains(out, "CROSSSLOT") {
			t.Errorf("a process met CROSSSLOT on the cluster:\n%s", out)
		}
	}
	t.Logf("the cluster test took %v", time.Since(began).Round(time.Millisecond))
}
