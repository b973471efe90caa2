package fleet_test

// Helpers of the reader, API, metrics and discovery tests. Their names are
// distinct from the dashboard tests' helpers, which share this package.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// realWorker is a `botfleet worker` process.
type realWorker struct {
	id   string
	port int
	proc *testbin.Proc
}

// spawnWorker runs `botfleet worker` against srv, beating every 0.5 s with
// a 2 s TTL, and waits until its first beat is in Redis.
func spawnWorker(t *testing.T, srv *redistest.Server, id string) *realWorker {
	t.Helper()
	w := &realWorker{id: id, port: testbin.FreePort(t)}
	w.proc = testbin.Start(t, []string{
		"REDIS_URL=" + srv.URL(), "WORKER_ID=" + id, "HEARTBEAT_INTERVAL=0.5", "HEARTBEAT_TTL=2",
		"METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(w.port), "LOG_DIR=" + t.TempDir(),
	}, "worker")
	rdb := srv.Client(t)
	testbin.WaitFor(t, 15*time.Second, id+"'s first beat", func() bool {
		return rdb.Exists(context.Background(), heartbeat.KeyPrefix+id).Val() == 1
	})
	return w
}

// beat is a heartbeat written by hand.
type beat struct {
	id       string
	state    string    // default IDLE
	at       time.Time // the timestamp
	interval string    // seconds, default "30"
	ttl      int       // seconds, default 3 x interval rounded up
}

// writeBeat writes b with redis-cli, as a worker in another language would:
// the session of docs/wire-format.md, "Writing a heartbeat by hand", with
// b's id, state, time, interval and TTL in place of the example's.
func writeBeat(t testing.TB, srv *redistest.Server, b beat) {
	t.Helper()
	if b.state == "" {
		b.state = "IDLE"
	}
	if b.interval == "" {
		b.interval = "30"
	}
	if b.ttl == 0 {
		f, err := strconv.ParseFloat(b.interval, 64)
		if err != nil {
			t.Fatal(err)
		}
		b.ttl = int(3*f + 0.999)
	}
	ts := strconv.FormatFloat(float64(b.at.UnixMilli())/1e3, 'f', 3, 64)
	started := strconv.FormatFloat(float64(b.at.Add(-time.Hour).UnixMilli())/1e3, 'f', 3, 64)
	session := docSession(t)
	for _, r := range []struct{ old, new string }{
		{"EXPIRE worker:heartbeat:worker-1 90", fmt.Sprintf("EXPIRE worker:heartbeat:worker-1 %d", b.ttl)},
		{"worker-1", b.id},
		{"state IDLE", "state " + b.state},
		{"interval 30 ", "interval " + b.interval + " "},
		{"1688851200.123", ts},
		{"1688847600.123", started},
	} {
		if !strings.Contains(session, r.old) {
			t.Fatalf("the session of %s no longer contains %q: update writeBeat", wireDoc, r.old)
		}
		session = strings.ReplaceAll(session, r.old, r.new)
	}
	srv.CLI(t, session)
}

const wireDoc = "../docs/wire-format.md"

// docSession returns the redis-cli session of docs/wire-format.md: the
// ```redis block that starts with MULTI.
func docSession(t testing.TB) string {
	t.Helper()
	doc, err := os.ReadFile(wireDoc)
	if err != nil {
		t.Fatal(err)
	}
	for rest := string(doc); ; {
		_, after, ok := strings.Cut(rest, "```redis\n")
		if !ok {
			t.Fatalf("%s: no ```redis block starting with MULTI", wireDoc)
		}
		block, tail, _ := strings.Cut(after, "```")
		if strings.HasPrefix(block, "MULTI\n") {
			return block
		}
		rest = tail
	}
}

// noRetryClient is a client of srv that fails at once when srv is down,
// instead of retrying for seconds.
func noRetryClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisNow returns Redis's clock.
func redisNow(t testing.TB, rdb *redis.Client) time.Time {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// find returns the worker id of f, or fails the test.
func find(t testing.TB, f fleet.Fleet, id string) fleet.Worker {
	t.Helper()
	for _, w := range f.Workers {
		if w.WorkerID == id {
			return w
		}
	}
	t.Fatalf("worker %s is not listed; got %v", id, ids(f))
	return fleet.Worker{}
}

func ids(f fleet.Fleet) []string {
	var s []string
	for _, w := range f.Workers {
		s = append(s, w.WorkerID)
	}
	return s
}

func list(t testing.TB, r *fleet.Reader) fleet.Fleet {
	t.Helper()
	f, err := r.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return f
}

// mountAPI serves r's API (NewHandler) on a loopback httptest server and
// returns its URL.
func mountAPI(t testing.TB, r *fleet.Reader) string {
	t.Helper()
	ts := httptest.NewServer(fleet.NewHandler(r))
	t.Cleanup(ts.Close)
	return ts.URL
}
