package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/jobs"
)

// replicaLag is how long the lag links hold the master's replication
// stream: a replica that is behind, as over a congested link. What the
// master wrote in the last replicaLag is lost when it dies, unless the
// bot waited for a replica before answering 202.
const replicaLag = 250 * time.Millisecond

// TestSentinelFailover runs the fleet (the bot and a worker, built
// binaries) on REDIS_URL=redis+sentinel://... with a master, two replicas
// behind lag links and three sentinels; kills the master with SIGKILL
// while jobs flow; and checks that the fleet continues on the promoted
// replica without a restart: heartbeats resume, the bot accepts jobs
// again, every surviving job runs, and `botfleet status` reads the fleet.
// It measures the jobs answered 202 and then lost, without a replica wait
// and with REDIS_WAIT_REPLICAS=1, which must lose none. Two replicas, so
// that after the failover one is left to confirm a WAIT.
func TestSentinelFailover(t *testing.T) {
	for _, wait := range []int{0, 1} {
		t.Run("REDIS_WAIT_REPLICAS="+strconv.Itoa(wait), func(t *testing.T) {
			r := runFailover(t, wait)
			t.Logf("REDIS_WAIT_REPLICAS=%d: heartbeats resumed %v after SIGKILL, the bot accepted again after %v; "+
				"%d jobs/s accepted before the kill; %d jobs answered 202 (%d after the failover), %d of them lost; %d answered 503",
				wait, r.heartbeat.Round(time.Millisecond), r.accept.Round(time.Millisecond), r.rate, r.accepted, r.acceptedAfter, r.lost, r.refused)
			if wait > 0 && r.lost != 0 {
				t.Errorf("%d jobs answered 202 were lost with REDIS_WAIT_REPLICAS=%d; want 0", r.lost, wait)
			}
		})
	}
}

type failoverResult struct {
	heartbeat, accept                            time.Duration
	rate, accepted, acceptedAfter, lost, refused int // rate: jobs accepted in the second before the kill
}

func runFailover(t *testing.T, wait int) failoverResult {
	master := redistest.Start(t)
	for range 2 {
		replica := redistest.Start(t)
		replica.ReplicaOf(t, startLagLink(t, master.Addr(), replicaLag))
	}
	sentinels := redistest.StartSentinels(t, master, redistest.SentinelOptions{DownAfter: time.Second, Failover: 3 * time.Second})
	sentinels.WaitReady(t, 2, 20*time.Second)

	url := sentinels.URL(0)
	port := testbin.FreePort(t)
	botURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	testbin.Start(t, []string{"REDIS_URL=" + url, "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(port),
		"REDIS_WAIT_REPLICAS=" + strconv.Itoa(wait), "REDIS_WAIT_TIMEOUT=1", "REDIS_TIMEOUT=2"}, "bot")
	testbin.Start(t, []string{"REDIS_URL=" + url, "METRICS_ADDR=127.0.0.1", "METRICS_PORT=0", "WORKER_ID=worker-f1",
		"WORKER_CONCURRENCY=4", "HEARTBEAT_INTERVAL=0.25", "HEARTBEAT_TTL=10", "JOB_VISIBILITY_TIMEOUT=2", "LOG_DIR=" + t.TempDir()}, "worker")
	testbin.WaitFor(t, 20*time.Second, "the bot's /livez", func() bool {
		code, _ := get(t, botURL+"/livez", "")
		return code == http.StatusOK
	})

	watch := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: sentinels.Addrs()})
	defer watch.Close()
	testbin.WaitFor(t, 20*time.Second, "the worker's heartbeat", func() bool {
		return watch.Exists(context.Background(), "worker:heartbeat:worker-f1").Val() == 1
	})
	load := startLoad(botURL, 6)
	defer load.stop()
	testbin.WaitFor(t, 20*time.Second, "50 jobs accepted", func() bool { return load.count(time.Time{}) >= 50 })
	// A second of steady load, so that the kill lands in full flow (a
	// duration of load, not a wait for background work).
	steady := time.Now()
	time.Sleep(time.Second)
	var r failoverResult
	r.rate = load.count(steady)
	killed := time.Now()
	master.Stop(t) // SIGKILL

	testbin.WaitFor(t, 30*time.Second, "a heartbeat on the promoted replica", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		ts, err := watch.HGet(ctx, "worker:heartbeat:worker-f1", "timestamp").Float64()
		if err == nil && ts > float64(killed.UnixMicro())/1e6 {
			r.heartbeat = time.Since(killed)
			return true
		}
		return false
	})
	testbin.WaitFor(t, 30*time.Second, "a job accepted after the failover", func() bool {
		at, ok := load.firstAcceptedAfter(killed)
		r.accept = at.Sub(killed)
		return ok
	})
	testbin.WaitFor(t, 20*time.Second, "5 more jobs accepted", func() bool { return load.count(killed) >= 5 })
	load.stop()

	addr, err := sentinels.MasterAddr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ids := load.acceptedIDs()
	r.accepted, r.acceptedAfter, r.refused = len(ids), load.count(killed), load.refusedCount()
	var notDone []string // surviving jobs not (yet) succeeded
	testbin.WaitFor(t, 30*time.Second, "every surviving accepted job done", func() bool {
		r.lost, notDone = 0, nil
		for _, id := range ids {
			switch st, err := rdb.HGet(context.Background(), "job:"+id, "status").Result(); {
			case err == redis.Nil:
				r.lost++
			case err != nil || st != jobs.StatusSucceeded:
				notDone = append(notDone, id+"="+st)
			}
		}
		return len(notDone) == 0
	})
	if len(notDone) > 0 {
		t.Errorf("accepted jobs not succeeded: %v", notDone[:min(len(notDone), 10)])
	}

	status := testbin.Start(t, []string{"REDIS_URL=" + url}, "status", "-o", "json")
	var f struct {
		Summary struct{ Alive int } `json:"summary"`
	}
	code := status.Wait(t, 15*time.Second)
	out := status.Output()
	if err := json.Unmarshal([]byte(withoutLogLines(out)), &f); code != 0 || err != nil || f.Summary.Alive != 1 {
		t.Errorf("botfleet status on the Sentinel URL: exit %d, %d alive, %v; want 0, 1:\n%s", code, f.Summary.Alive, err, out)
	}
	return r
}

// withoutLogLines drops the log lines (go-redis's notes on finding the
// master, one JSON object a line, on stderr) that may come before or
// amid the indented JSON on stdout.
func withoutLogLines(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, `{"`) && !strings.HasPrefix(line, "redis: ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// startLagLink relays connections to target, holding what target sends
// for delay before passing it on; what it holds when target's side ends
// is dropped, as a dead master's unsent output is. It returns its address.
func startLagLink(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, down, up)
			mu.Unlock()
			go func() { _, _ = io.Copy(up, down); up.Close() }()
			go relayLate(up, down, delay)
		}
	}()
	return ln.Addr().String()
}

// relayLate copies from src to dst, each chunk delay after it was read.
func relayLate(src, dst net.Conn, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	chunks := make(chan chunk, 1<<14)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				chunks <- chunk{b[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	defer dst.Close()
	for {
		select {
		case <-ended:
			return
		case c := <-chunks:
			select {
			case <-ended:
				return
			case <-time.After(time.Until(c.at.Add(delay))):
			}
			if _, err := dst.Write(c.b); err != nil {
				return
			}
		}
	}
}

// load submits echo jobs to the bot from n goroutines until stopped and
// records every answer.
type load struct {
	cancel  context.CancelFunc
	done    sync.WaitGroup
	mu      sync.Mutex
	answers []answer
}

type answer struct {
	id         string
	code       int
	sent, recv time.Time
}

func startLoad(botURL string, n int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range n {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for j := 0; ctx.Err() == nil; j++ {
				a := answer{sent: time.Now()}
				body := fmt.Sprintf(`{"type":"echo","payload":{"n":"%d-%d"}}`, i, j)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, botURL+"/api/jobs", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := client.Do(req); err == nil {
					var m struct{ ID string }
					_ = json.NewDecoder(resp.Body).Decode(&m)
					resp.Body.Close()
					a.code, a.id = resp.StatusCode, m.ID
				}
				a.recv = time.Now()
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) stop() { l.cancel(); l.done.Wait() }

// count counts the 202s to requests sent after since.
func (l *load) count(since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answers {
		if a.code == http.StatusAccepted && a.sent.After(since) {
			n++
		}
	}
	return n
}

func (l *load) refusedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answers {
		if a.code != http.StatusAccepted {
			n++
		}
	}
	return n
}

// firstAcceptedAfter returns when the first 202 to a request sent after
// since arrived.
func (l *load) firstAcceptedAfter(since time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, a := range l.answers {
		if a.code == http.StatusAccepted && a.sent.After(since) && (first.IsZero() || a.recv.Before(first)) {
			first = a.recv
		}
	}
	return first, !first.IsZero()
}

func (l *load) acceptedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, a := range l.answers {
		if a.code == http.StatusAccepted {
			ids = append(ids, a.id)
		}
	}
	return ids
}
