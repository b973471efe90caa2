package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/cli"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/jobs"
)

// admin runs `botfleet args...` in-process against srv and returns its
// exit code, stdout and stderr.
func admin(t *testing.T, srv *redistest.Server, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"REDIS_URL": srv.URL()}
	code := cli.RunEnv(context.Background(), args, &cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

// deadEchoJobs dead-letters n echo jobs with a consumer whose echo always
// fails, then stops it.
func deadEchoJobs(t *testing.T, srv *redistest.Server, n int) []string {
	t.Helper()
	rdb := srv.Client(t)
	q := jobs.NewQueue(rdb, "", jobs.QueueOptions{MaxAttempts: 1})
	mux := jobs.NewMux()
	mux.HandleFunc("echo", func(context.Context, *jobs.Job) (any, error) { return nil, errors.New("echo is down") })
	c := jobs.NewConsumer(rdb, "", "breaker", mux, jobs.ConsumerOptions{})
	go c.Run(context.Background())
	var ids []string
	for range n {
		info, err := q.Enqueue(context.Background(), "echo", map[string]string{"api_key": "sk-live-123"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	for _, id := range ids {
		testbin.WaitFor(t, 15*time.Second, id+" dead", func() bool {
			info, err := q.Get(context.Background(), id)
			return err == nil && info.Status == jobs.StatusFailed
		})
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestJobsQueuesWorkersCommands is the "done when" through the
// CLI, with a real worker process: the dead echo jobs of the last hour are
// listed, retried and succeed; a paused queue holds a job while the worker
// idles; a quiet worker shows it in status; a stop request stops it; and
// the exit codes follow status's.
func TestJobsQueuesWorkersCommands(t *testing.T) {
	srv := redistest.Start(t)
	ids := deadEchoJobs(t, srv, 2)
	code, out, _ := admin(t, srv, "jobs", "ls", "-status", "dead", "-type", "echo", "-since", "1h", "-o", "json")
	var page struct {
		Jobs []struct{ ID, Status string } `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Jobs) != 2 {
		t.Fatalf("jobs ls dead echo: exit %d, %v, %s; want 2 jobs", code, err, out)
	}
	code, out, _ = admin(t, srv, "jobs", "show", ids[0])
	if code != 0 || strings.Contains(out, "sk-live-123") || !strings.Contains(out, "echo is down") {
		t.Errorf("jobs show: exit %d, want the error and a redacted payload:\n%s", code, out)
	}

	w := startWorker(t, srv, "worker-c1")
	code, out, errOut := admin(t, srv, "jobs", "retry", "-all", "-type", "echo", "-since", "1h", "-o", "json")
	if code != 0 || !strings.Contains(out, `"count": 2`) || !strings.Contains(errOut, `"credential":"cli (REDIS_URL)"`) {
		t.Fatalf("jobs retry -all: exit %d:\n%s\n%s", code, out, errOut)
	}
	q := jobs.NewQueue(srv.Client(t), "", jobs.QueueOptions{})
	for _, id := range ids {
		testbin.WaitFor(t, 15*time.Second, id+" succeeded after the retry", func() bool {
			info, err := q.Get(context.Background(), id)
			return err == nil && info.Status == jobs.StatusSucceeded
		})
	}

	if code, _, _ := admin(t, srv, "queues", "pause", "default"); code != 0 {
		t.Fatalf("queues pause: exit %d", code)
	}
	testbin.WaitFor(t, 10*time.Second, "the worker to log the pause", func() bool {
		return strings.Contains(w.proc.Output(), "queue paused: taking no new jobs")
	})
	held, err := q.Enqueue(context.Background(), "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	beats := rdb.XLen(context.Background(), "worker:status").Val()
	testbin.WaitFor(t, 10*time.Second, "three more beats of the idle worker", func() bool {
		return rdb.XLen(context.Background(), "worker:status").Val() >= beats+3
	})
	code, out, _ = admin(t, srv, "queues", "ls", "-o", "json")
	if code != 0 || !strings.Contains(out, `"paused": true`) || !strings.Contains(out, `"waiting": 1`) {
		t.Errorf("queues ls while paused: exit %d, want default paused with 1 waiting:\n%s", code, out)
	}
	if info, _ := q.Get(context.Background(), held.ID); info.Status != jobs.StatusQueued {
		t.Errorf("job enqueued while paused is %s, want queued", info.Status)
	}
	if code, _, _ := admin(t, srv, "queues", "resume", "default"); code != 0 {
		t.Fatalf("queues resume: exit %d", code)
	}
	testbin.WaitFor(t, 15*time.Second, "the held job to run after the resume", func() bool {
		info, err := q.Get(context.Background(), held.ID)
		return err == nil && info.Status == jobs.StatusSucceeded
	})

	if code, _, _ := admin(t, srv, "workers", "quiet", "worker-c1"); code != 0 {
		t.Fatalf("workers quiet: exit %d", code)
	}
	testbin.WaitFor(t, 10*time.Second, "status to show worker-c1 quiet", func() bool {
		_, out := status(t, srv)
		return strings.Contains(out, "IDLE (quiet)")
	})
	if code, _, _ := admin(t, srv, "workers", "stop", "worker-c1"); code != 0 {
		t.Fatalf("workers stop: exit %d", code)
	}
	if code := w.proc.Wait(t, 30*time.Second); code != 0 {
		t.Errorf("worker after a stop request: exit %d, want 0\n%s", code, w.proc.Output())
	}

	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown job", []string{"jobs", "show", "echo.nope"}, 1},
		{"retry a succeeded job", []string{"jobs", "retry", ids[0]}, 1},
		{"bad status", []string{"jobs", "ls", "-status", "lost"}, 2},
		{"no subcommand", []string{"queues"}, 2},
		{"unknown worker", []string{"workers", "quiet", "worker-gone"}, 1},
	} {
		if code, _, _ := admin(t, srv, tt.args...); code != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, code, tt.want)
		}
	}
}
