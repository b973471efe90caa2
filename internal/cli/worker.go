package cli

import (
	"context"
	"net"
	"strconv"

	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/internal/version"
	"github.com/botfleet/botfleet/monitoring"
	"github.com/botfleet/botfleet/worker"
)

func init() {
	register(command{name: "worker", summary: "run a worker: endpoints on METRICS_PORT, heartbeat in Redis, jobs from the queue", run: runWorker})
	register(command{name: "healthcheck", summary: "probe a local process's /livez (for Docker HEALTHCHECK); exit 0 when healthy", run: runHealthcheck})
}

// runWorker runs a worker of the built-in job types, configured by the
// environment.
func runWorker(ctx context.Context, env *Env, args []string) error {
	if err := parse(newFlags(env, "worker", ""), args); err != nil {
		return err
	}
	opts, err := worker.FromEnv(env.Getenv)
	logger, closeLogs, err := setupLogs(env, err, "worker", opts.ID, opts.Deployment)
	if err != nil {
		return err
	}
	defer closeLogs()
	opts.Logger, opts.Version = logger, version.String()
	w, err := worker.New(opts)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

func runHealthcheck(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "healthcheck", "[-url URL]")
	l := config.New(env.Getenv)
	port := l.Int("METRICS_PORT", monitoring.DefaultPort, 1, 65535)
	url := fs.String("url", "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))+"/livez", "URL to probe")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := badEnvironment(l.Err()); err != nil {
		return err
	}
	if err := monitoring.Probe(ctx, *url); err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}
