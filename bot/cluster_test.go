package bot_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/chattest"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging/logtest"
	"github.com/botfleet/botfleet/worker"
)

// TestChatRepliesOnRedisCluster runs a chat frontend's whole reply path on
// a real three-master Redis Cluster: a user's run command queues a job
// and records the reply it owes, a real worker runs the job, the reply
// loop sends the result through the SendFunc exactly once and settles it.
// The reply's keys carry the frontend's hash tag, {<frontend>}, so that
// the transactions of expect and settle stay in one slot; the untagged
// names are never written; and nothing logs a CROSSSLOT error.
//
// chattest.Env hard-wires a single redis-server (*redistest.Server and a
// *redis.Client), so the Deps, the worker and the log recorders are built
// here on the cluster client.
func TestChatRepliesOnRedisCluster(t *testing.T) {
	began := time.Now()
	defaults := logtest.Capture(t) // whatever logs through slog.Default
	cluster := redistest.StartCluster(t, 3)
	rdb := cluster.Client(t)
	ctx := context.Background()

	const name = "test_bot"
	pendingKey := "bot:replies:{" + name + "}"
	replyKey := func(id string) string { return "bot:reply:{" + name + "}:" + id }

	chatLogs, workerLogs := logtest.NewRecorder(), logtest.NewRecorder()
	reg := prometheus.NewRegistry()
	metrics, err := bot.NewMetrics(reg, prometheus.Labels{"service": "bot"})
	if err != nil {
		t.Fatal(err)
	}
	types := jobs.NewMux()
	jobs.Builtins(types, nil)
	c := bot.NewChat(bot.Deps{Name: name, Queue: jobs.NewQueue(rdb, "", jobs.QueueOptions{}), Types: types,
		Metrics: metrics, Logger: bot.FrontendLogger(chatLogs.Logger(), name), Redis: rdb,
		Chat: bot.ChatOptions{PollInterval: 10 * time.Millisecond, SendTimeout: 5 * time.Second}},
		bot.Platform{HashKey: []byte("cluster-secret"), MaxText: 4096})

	w, err := worker.New(worker.Options{Redis: rdb, Addr: "127.0.0.1:0", ID: "worker-cl1",
		HeartbeatInterval: 500 * time.Millisecond, RetryBackoff: 100 * time.Millisecond, Logger: workerLogs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	stopWorker := runUntilStopped(t, "the worker", w.Run)

	// The message: the job is queued and the reply it owes recorded.
	const route, user = "chat-c1", "user-7700"
	r := c.Handle(ctx, bot.Message{User: user, Text: `run echo {"message": "hi from the cluster"}`, Route: route, ID: "m-1"})
	if !strings.HasPrefix(r.JobID, "echo.") || !strings.Contains(r.Text, "Queued job "+r.JobID+". Its result comes here") {
		t.Fatalf("run answered %+v; want the job queued and its reply recorded (chat logs: %v)", r, chatLogs.Records())
	}
	id := r.JobID

	// While owed, and before any reply loop runs (so nothing races these
	// reads): exactly the two tagged keys exist, in one slot.
	if got, want := replyKeysOf(ctx, t, rdb), []string{pendingKey, replyKey(id)}; !slices.Equal(got, want) {
		t.Errorf("reply keys while the reply is owed = %q, want %q", got, want)
	}
	if score, err := rdb.ZScore(ctx, pendingKey, id).Result(); err != nil || score != 0 {
		t.Errorf("ZSCORE %s %s = %v, %v; want 0 (due at once)", pendingKey, id, score, err)
	}
	hash := rdb.HGetAll(ctx, replyKey(id)).Val()
	if hash["route"] != route || hash["frontend"] != name || hash["user"] != c.UserHash(user) || hash["attempts"] != "0" {
		t.Errorf("HGETALL %s = %v", replyKey(id), hash)
	}
	if ttl := rdb.PTTL(ctx, replyKey(id)).Val(); ttl <= 0 {
		t.Errorf("PTTL %s = %v, want the reply window", replyKey(id), ttl)
	}
	if a, b := rdb.ClusterKeySlot(ctx, pendingKey).Val(), rdb.ClusterKeySlot(ctx, replyKey(id)).Val(); a != b {
		t.Errorf("slots of %s and %s = %d, %d; want one", pendingKey, replyKey(id), a, b)
	}
	if n, err := c.Pending(ctx); n != 1 || err != nil {
		t.Errorf("Pending = %d, %v; want 1", n, err)
	}

	// The reply loop sends the result once the worker has run the job.
	type call struct{ route, text string }
	var (
		mu    sync.Mutex
		calls []call
	)
	first := make(chan struct{})
	send := func(_ context.Context, route, text string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{route, text})
		if len(calls) == 1 {
			close(first)
		}
		return nil
	}
	stopReplies := runUntilStopped(t, "the reply loop", func(ctx context.Context) error { return c.RunReplies(ctx, send) })
	select {
	case <-first:
	case <-time.After(chattest.Wait):
		t.Fatalf("no reply sent within %v (job %s: %v; chat logs %q)", chattest.Wait, id, jobState(ctx, rdb, id), chatLogs.Messages())
	}
	chattest.WaitFor(t, "the reply settled", func() bool {
		n, err := c.Pending(ctx)
		return err == nil && n == 0
	})
	stopReplies()
	stopWorker()

	mu.Lock()
	got := slices.Clone(calls)
	mu.Unlock()
	want := call{route, fmt.Sprintf(`Job %s succeeded: {"message":"hi from the cluster"}`, id)}
	if len(got) != 1 || got[0] != want {
		t.Errorf("SendFunc calls = %q, want exactly %q", got, want)
	}

	// Settled: the pending set is empty and gone, the reply hash gone, and
	// no untagged name was ever written (the reply loop is stopped, so no
	// later write can come).
	if n := rdb.Exists(ctx, pendingKey).Val(); n != 0 {
		t.Errorf("EXISTS %s = %d after settle, want 0", pendingKey, n)
	}
	if n := rdb.Exists(ctx, replyKey(id)).Val(); n != 0 {
		t.Errorf("EXISTS %s = %d after settle, want 0", replyKey(id), n)
	}
	if keys := replyKeysOf(ctx, t, rdb); len(keys) != 0 {
		t.Errorf("reply keys after settle = %q, want none (untagged bot:replies:%s and bot:reply:%s included)", keys, name, id)
	}

	// The log: the reply was sent; the chat warned about nothing; nobody
	// met CROSSSLOT.
	sent := 0
	for _, rec := range chatLogs.Records() {
		if rec.Message == "reply_sent" && rec.Attrs["kind"] == "result" && rec.Attrs["job_id"] == id {
			sent++
		}
		if rec.Level >= slog.LevelWarn {
			t.Errorf("the chat logged %s %q %v", rec.Level, rec.Message, rec.Attrs)
		}
	}
	if sent != 1 {
		t.Errorf("%d reply_sent records of kind result for %s, want 1: %q", sent, id, chatLogs.Messages())
	}
	for who, logs := range map[string]*logtest.Recorder{"the chat": chatLogs, "the worker": workerLogs, "slog.Default": defaults} {
		for _, rec := range logs.Records() {
			if s := rec.Message + " " + fmt.Sprint(rec.Attrs); strings.Contains(strings.ToUpper(s), "CROSSSLOT") {
				t.Errorf("%s logged a CROSSSLOT error: %s", who, s)
			}
		}
	}
	if n := chattest.Counter(t, reg, "bot_frontend_jobs_total", "frontend", name, "status", "succeeded"); n != 1 {
		t.Errorf(`bot_frontend_jobs_total{status="succeeded"} = %v, want 1`, n)
	}

	// The check has teeth: the untagged layout would cross slots here, and
	// go-redis refuses such a transaction with CROSSSLOT, which expect
	// would have logged ("reply route not recorded").
	untagged := []string{"bot:replies:" + name, "bot:reply:" + id}
	if rdb.ClusterKeySlot(ctx, untagged[0]).Val() != rdb.ClusterKeySlot(ctx, untagged[1]).Val() {
		_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Exists(ctx, untagged[0])
			p.Exists(ctx, untagged[1])
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Errorf("a transaction over %q = %v, want a CROSSSLOT error", untagged, err)
		}
	}
	t.Logf("the chat's reply path on the cluster took %v", time.Since(began).Round(time.Millisecond))
}

// replyKeysOf returns every key of the reply routing, tagged or not, on
// every master of the cluster, sorted.
func replyKeysOf(ctx context.Context, t *testing.T, rdb *redis.ClusterClient) []string {
	t.Helper()
	var (
		mu   sync.Mutex
		keys []string
	)
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		found, err := node.Keys(ctx, "bot:repl*").Result()
		mu.Lock()
		keys = append(keys, found...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatalf("KEYS bot:repl* on the masters: %v", err)
	}
	slices.Sort(keys)
	return keys
}

// jobState returns a job's record on the cluster's default queue, for
// failure messages.
func jobState(ctx context.Context, rdb *redis.ClusterClient, id string) map[string]string {
	return rdb.HGetAll(ctx, "job:{default}:"+id).Val()
}

// runUntilStopped runs fn in a goroutine until the returned stop is called
// (or the test ends): stop cancels fn's context and waits, at most
// chattest.Wait, for it to return; an error other than a cancellation
// fails the test. stop may be called more than once.
func runUntilStopped(t *testing.T, what string, fn func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(chattest.Wait):
				t.Errorf("%s did not return within %v of its context's end", what, chattest.Wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
