package worker_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/worker"
)

// A worker of one job type of your own beside the built-ins, configured by
// the environment (REDIS_URL, WORKER_ID, METRICS_PORT, ...), that runs
// until SIGTERM and then shuts down in order.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mux := jobs.NewMux()
	jobs.Builtins(mux, nil)
	mux.HandleFunc("greet", func(ctx context.Context, job *jobs.Job) (any, error) {
		var p struct{ Name string }
		if err := job.Decode(&p); err != nil {
			return nil, err
		}
		return map[string]string{"greeting": "hello, " + p.Name}, nil
	})

	opts, err := worker.FromEnv(nil)
	if err != nil {
		log.Fatal(err) // names every bad variable and what is allowed
	}
	opts.Mux = mux
	w, err := worker.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
