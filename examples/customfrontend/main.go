// Command customfrontend is a bot with a frontend of its own beside the
// web job API: "scheduler" submits a job every interval, as a cron would,
// and shows its schedule at GET /api/schedule. It logs as service
// "scheduler" and counts its jobs under frontend="scheduler" in
// bot_jobs_submitted_total, like the built-in frontends do under theirs.
//
//	REDIS_URL=redis://localhost:6379/0 METRICS_PORT=9220 \
//	SCHEDULE_EVERY=10 SCHEDULE_JOB='{"type": "echo", "payload": {"message": "tick"}}' \
//	go run ./examples/customfrontend
//
// Copy it to start a frontend of your own: the frontend lives in
// scheduler.go, the composition in main.go.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "customfrontend:", err)
		os.Exit(1)
	}
}

// run is main with its environment and output given, so a test can drive it.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	opts, err := bot.FromEnv(getenv) // README's variables, each validated
	if err != nil {
		return err
	}
	entry, err := scheduleFromEnv(getenv)
	if err != nil {
		return err
	}
	logger, closeLogs, err := logging.Setup(logging.Options{Service: "bot", Stdout: stdout, Deployment: opts.Deployment})
	if err != nil {
		return err
	}
	defer closeLogs()

	opts.Logger = logger
	b, err := bot.New(opts) // with the web frontend and the fleet view
	if err != nil {
		return err
	}
	if err := b.Add(NewScheduler(b.Deps("scheduler"), entry)); err != nil {
		return err
	}
	return b.Run(ctx)
}

// scheduleFromEnv reads SCHEDULE_EVERY (seconds, default 30) and
// SCHEDULE_JOB (the job, as POST /api/jobs takes it; default an echo).
func scheduleFromEnv(getenv func(string) string) (Entry, error) {
	e := Entry{Every: 30 * time.Second, Type: "echo", Payload: json.RawMessage(`{"message": "scheduled"}`)}
	if v := getenv("SCHEDULE_EVERY"); v != "" {
		d, err := time.ParseDuration(v + "s")
		if err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
			return e, fmt.Errorf("SCHEDULE_EVERY=%q: want a number of seconds from 0.1 to 86400", v)
		}
		e.Every = d
	}
	if v := getenv("SCHEDULE_JOB"); v != "" {
		var job struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal([]byte(v), &job); err != nil || job.Type == "" {
			return e, fmt.Errorf(`SCHEDULE_JOB=%q: want {"type": "<job type>", "payload": {...}}`, v)
		}
		e.Type, e.Payload = job.Type, job.Payload
	}
	return e, nil
}
