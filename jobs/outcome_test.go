package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/botfleet/botfleet/logging/logtest"
)

// TestOutcomeWriteRefusedForOneJob: a job hash clobbered by hand (a string
// where the hash was) makes Redis refuse that job's writes; the batch's
// other jobs are recorded, every finished entry is acknowledged and leaves
// the stream, and the refusal is logged with Redis's error.
func TestOutcomeWriteRefusedForOneJob(t *testing.T) {
	_, rdb := newRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, "", QueueOptions{})
	clobbered := enqueue(t, q, "echo", "a")
	fine := enqueue(t, q, "echo", "b")
	if err := rdb.Set(ctx, "job:"+clobbered.ID, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rec := logtest.Capture(t)
	mux := NewMux()
	mux.HandleFunc("echo", func(_ context.Context, j *Job) (any, error) { return j.Payload, nil })
	startConsumer(t, rdb, "", "worker-a", mux, testOptions(rec))

	waitStatus(t, q, fine.ID, StatusSucceeded)
	waitFor(t, "both entries acknowledged and deleted", func() bool { return rdb.XLen(ctx, "jobs:default").Val() == 0 })
	waitFor(t, "the refusal logged", func() bool {
		for _, r := range rec.Records() {
			if r.Level == slog.LevelError && r.Message == "redis refused a command" &&
				strings.Contains(fmt.Sprint(r.Attrs["error"]), "WRONGTYPE") {
				return true
			}
		}
		return false
	})
	if got := rdb.Get(ctx, "job:"+clobbered.ID).Val(); got != "not a hash" {
		t.Errorf("the clobbered key = %q, want it left as it was", got)
	}
}
