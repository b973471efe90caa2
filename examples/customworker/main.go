// Command customworker is a worker with a job type of its own beside the
// built-in ones: "invoice.total" adds up an invoice's lines. It joins the
// fleet like `botfleet worker` (the same variables, heartbeat, /health and
// /metrics), and its jobs are submitted through the bot's job API: the
// worker advertises its types, so the bot accepts them.
//
//	REDIS_URL=redis://localhost:6379/0 METRICS_PORT=9210 go run ./examples/customworker
//
// Copy it to start a worker of your own: the job type lives in invoice.go,
// the composition in main.go.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "customworker:", err)
		os.Exit(1)
	}
}

// run is main with its environment and output given, so a test can drive it.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	opts, err := worker.FromEnv(getenv) // README's variables, each validated
	if err != nil {
		return err
	}
	logger, closeLogs, err := logging.Setup(logging.Options{Service: "worker", WorkerID: opts.ID, Stdout: stdout, Deployment: opts.Deployment})
	if err != nil {
		return err
	}
	defer closeLogs()

	mux := jobs.NewMux()
	jobs.Builtins(mux, &jobs.BuiltinOptions{Fetch: jobs.FetchOptions{Allow: opts.FetchAllow}, Logger: logger})
	mux.Handle(InvoiceType, InvoiceHandler{Logger: logger}) // validated by its Validate method, at the bot's door too

	opts.Mux, opts.Logger = mux, logger
	w, err := worker.New(opts)
	if err != nil {
		return err
	}
	return w.Run(ctx) // until SIGTERM or Ctrl-C, then the ordered shutdown
}
