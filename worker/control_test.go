package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging/logtest"
	"github.com/botfleet/botfleet/worker"
)

// TestQuietThenStopThroughRedis quiets a worker while it runs a job: its
// heartbeat says quiet, the job finishes, and a job enqueued meanwhile
// waits through three more beats; resumed, the worker runs it. Then a stop
// request ends Run as SIGTERM would: STOPPED, hash gone, key deleted.
func TestQuietThenStopThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	release := make(chan struct{})
	mux := jobs.NewMux()
	mux.HandleFunc("block", func(ctx context.Context, _ *jobs.Job) (any, error) {
		<-release
		return "done", nil
	})
	w, err := worker.New(worker.Options{ID: "worker-q", Redis: rdb, Mux: mux, Addr: "127.0.0.1:0",
		HeartbeatInterval: 200 * time.Millisecond, Logger: logtest.Capture(t).Logger()})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	q := jobs.NewQueue(rdb, "", jobs.QueueOptions{})
	first, err := q.Enqueue(ctx, "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitJob(t, q, first.ID, jobs.StatusRunning)

	if err := heartbeat.SendControl(ctx, rdb, "worker-q", heartbeat.ControlQuiet); err != nil {
		t.Fatal(err)
	}
	key := heartbeat.KeyPrefix + "worker-q"
	testbin.WaitFor(t, 10*time.Second, "quiet 1 in the heartbeat", func() bool {
		return rdb.HGet(ctx, key, "quiet").Val() == "1"
	})
	second, _ := q.Enqueue(ctx, "block", nil)
	close(release)
	waitJob(t, q, first.ID, jobs.StatusSucceeded)
	beats := rdb.XLen(ctx, heartbeat.StreamKey).Val()
	testbin.WaitFor(t, 10*time.Second, "three more beats", func() bool {
		return rdb.XLen(ctx, heartbeat.StreamKey).Val() >= beats+3
	})
	if info, _ := q.Get(ctx, second.ID); info.Status != jobs.StatusQueued {
		t.Fatalf("job enqueued while quiet is %s, want queued", info.Status)
	}

	if err := heartbeat.SendControl(ctx, rdb, "worker-q", heartbeat.ControlResume); err != nil {
		t.Fatal(err)
	}
	waitJob(t, q, second.ID, jobs.StatusSucceeded)
	testbin.WaitFor(t, 10*time.Second, "quiet gone from the heartbeat", func() bool {
		return rdb.HExists(ctx, key, "quiet").Val() == false && rdb.Exists(ctx, key).Val() == 1
	})

	if err := heartbeat.SendControl(ctx, rdb, "worker-q", heartbeat.ControlStop); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run after a stop request = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after a stop request")
	}
	if n := rdb.Exists(ctx, key, heartbeat.ControlKey("worker-q")).Val(); n != 0 {
		t.Errorf("%d of the heartbeat hash and the control key left after the stop, want 0", n)
	}
	if err := heartbeat.SendControl(ctx, rdb, "worker-q", "dance"); err == nil {
		t.Error("SendControl(dance) = nil, want ErrBadControl")
	}
}

func waitJob(t *testing.T, q *jobs.Queue, id, status string) {
	t.Helper()
	testbin.WaitFor(t, 15*time.Second, "job "+id+" "+status, func() bool {
		info, err := q.Get(context.Background(), id)
		return err == nil && info.Status == status
	})
}
