package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// fleet is a real bot and real workers on a real redis-server.
type fleet struct {
	t       *testing.T
	redis   *redistest.Server
	rdb     *redis.Client
	logDir  string
	env     []string
	botURL  string
	workers map[string]*workerEnv
}

func startFleet(t *testing.T, workers ...string) *fleet {
	t.Helper()
	srv := redistest.Start(t)
	f := &fleet{t: t, redis: srv, rdb: srv.Client(t), logDir: t.TempDir(), workers: map[string]*workerEnv{}}
	f.env = []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "LOG_TO_FILE=1", "LOG_DIR=" + f.logDir,
		"HEARTBEAT_INTERVAL=0.5", "JOB_VISIBILITY_TIMEOUT=2", "JOB_RETRY_BACKOFF=0.1", "SHUTDOWN_GRACE=0.5"}
	port := testbin.FreePort(t)
	f.botURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	testbin.Start(t, append(f.env, "METRICS_PORT="+strconv.Itoa(port)), "bot")
	testbin.WaitFor(t, 15*time.Second, "the bot's /livez", func() bool {
		code, _ := get(t, f.botURL+"/livez", "")
		return code == http.StatusOK
	})
	for _, id := range workers {
		f.addWorker(id)
	}
	return f
}

func (f *fleet) addWorker(id string) *workerEnv {
	f.t.Helper()
	w := startWorker(f.t, f.redis, id, f.env...)
	f.workers[id] = w
	return w
}

// submit posts a job to the bot's web API and returns its id.
func (f *fleet) submit(typ, payload string) string {
	f.t.Helper()
	resp, err := http.Post(f.botURL+"/api/jobs", "application/json",
		strings.NewReader(fmt.Sprintf(`{"type":%q,"payload":%s}`, typ, payload)))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusAccepted {
		f.t.Fatalf("submit %s: %d %v", typ, resp.StatusCode, body)
	}
	return body["id"].(string)
}

// job returns the bot's view of a job.
func (f *fleet) job(id string) map[string]any {
	f.t.Helper()
	_, body := get(f.t, f.botURL+"/api/jobs/"+id, "")
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return m
}

func (f *fleet) waitStatus(id, status string, within time.Duration) map[string]any {
	f.t.Helper()
	var last map[string]any
	testbin.WaitFor(f.t, within, "job "+id+" to be "+status, func() bool {
		last = f.job(id)
		return last["status"] == status
	})
	return last
}

func TestFleetRunsJobsEndToEnd(t *testing.T) {
	f := startFleet(t, "worker-a", "worker-b")
	ctx := context.Background()

	t.Run("jobs flow through the bot and both workers", func(t *testing.T) {
		var ids []string
		for i := range 20 {
			ids = append(ids, f.submit("echo", fmt.Sprintf(`{"n":%d}`, i)))
		}
		for _, id := range ids {
			info := f.waitStatus(id, "succeeded", 20*time.Second)
			if info["result"] == nil || info["worker"] == "" {
				t.Errorf("job %s: %v", id, info)
			}
		}
		total := 0.0
		for _, w := range f.workers {
			_, body := get(t, w.base+"/metrics", "")
			total += metricValue(string(body), "worker_jobs_processed_total")
		}
		if total < 20 {
			t.Errorf("worker_jobs_processed_total across the fleet = %v, want >= 20", total)
		}
	})

	t.Run("a failing job is retried then dead-lettered", func(t *testing.T) {
		id := f.submit("fail", `{"message":"boom"}`)
		info := f.waitStatus(id, "failed", 20*time.Second)
		if info["attempts"] != 3.0 || !strings.Contains(fmt.Sprint(info["error"]), "boom") {
			t.Errorf("failed job: %v", info)
		}
		dead := f.rdb.XRange(ctx, "jobs:default:dead", "-", "+").Val()
		if len(dead) == 0 || !strings.Contains(fmt.Sprint(dead[len(dead)-1].Values), id) {
			t.Errorf("dead letters %v lack %s", dead, id)
		}
	})

	t.Run("a malformed entry is dead-lettered and the workers carry on", func(t *testing.T) {
		f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs:default", Values: map[string]any{"garbage": "1"}})
		testbin.WaitFor(t, 10*time.Second, "the malformed entry in the dead letters", func() bool {
			for _, e := range f.rdb.XRange(ctx, "jobs:default:dead", "-", "+").Val() {
				if strings.Contains(fmt.Sprint(e.Values), "garbage") {
					return true
				}
			}
			return false
		})
		f.waitStatus(f.submit("echo", `{}`), "succeeded", 10*time.Second)
	})

	t.Run("kill -9 mid-job: the other worker finishes it", func(t *testing.T) {
		id := f.submit("sleep", `{"duration":"1.5s"}`)
		info := f.waitStatus(id, "running", 10*time.Second)
		victim := info["worker"].(string)
		f.workers[victim].proc.Signal(t, syscall.SIGKILL)
		f.workers[victim].proc.Wait(t, 5*time.Second)
		delete(f.workers, victim)
		info = f.waitStatus(id, "succeeded", 30*time.Second)
		if info["worker"] == victim {
			t.Errorf("job finished by the killed worker %s?", victim)
		}
		f.addWorker(victim + "-2")
	})

	t.Run("SIGTERM during a long job leaves it to another worker", func(t *testing.T) {
		id := f.submit("sleep", `{"duration":"3s"}`)
		info := f.waitStatus(id, "running", 10*time.Second)
		victim := info["worker"].(string)
		w := f.workers[victim]
		w.proc.Signal(t, syscall.SIGTERM)
		if code := w.proc.Wait(t, 10*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
		delete(f.workers, victim)
		info = f.waitStatus(id, "succeeded", 30*time.Second)
		if info["worker"] == victim {
			t.Errorf("job %s finished by the stopped worker", id)
		}
	})

	t.Run("log files in the design's layout, with job_id on job lines", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(f.logDir, "bot", "bot.jsonl")); err != nil {
			t.Error(err)
		}
		// Which worker ran which job is up to the queue; every worker
		// has its own file, and job lines carry the job_id.
		files, _ := filepath.Glob(filepath.Join(f.logDir, "workers", "*.jsonl"))
		if len(files) < 3 {
			t.Errorf("worker log files: %v, want one per worker", files)
		}
		var all []byte
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		for _, want := range []string{`"job_id":"echo.`, `"job_id":"fail.`, `"job_id":"sleep.`} {
			if !bytes.Contains(all, []byte(want)) {
				t.Errorf("no worker log line carries %s", want)
			}
		}
	})
}

// metricValue sums the samples of a metric in a Prometheus text exposition.
func metricValue(body, name string) float64 {
	total := 0.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			fields := strings.Fields(line)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			total += v
		}
	}
	return total
}
