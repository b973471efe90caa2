package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/internal/version"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

func init() {
	register(command{name: "worker", summary: "run a worker: endpoints on METRICS_PORT, heartbeat in Redis, jobs from the queue", run: runWorker})
	register(command{name: "healthcheck", summary: "probe a local process's /livez (for Docker HEALTHCHECK); exit 0 when healthy", run: runHealthcheck})
}

func runWorker(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "worker", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.LoadWorker(env.Getenv)
	lc, err := loadLogging(env, err)
	if err != nil {
		return err
	}
	p, err := newProcess(ctx, env, "worker", cfg.ID, cfg.Process, lc)
	if err != nil {
		return err
	}
	defer p.close()
	logger, w := p.logger, p.state

	var metricsURL string // set once the server has its port
	beater, err := heartbeat.New(p.rdb, heartbeat.Options{
		Interval:     cfg.HeartbeatInterval,
		TTL:          cfg.HeartbeatTTL,
		StreamMaxLen: cfg.StreamMaxLen,
		Logger:       logger,
		Report: func() heartbeat.Status {
			s := w.Snapshot()
			return heartbeat.Status{
				WorkerID: s.ID, State: s.State.String(), Service: "worker",
				Hostname: p.deploy.Hostname, ContainerID: p.deploy.ContainerID, DeploymentEnv: p.deploy.Env, Region: p.deploy.Region,
				Version: version.String(), StartedAt: s.StartedAt,
				JobsProcessed: s.JobsProcessed, JobsFailed: s.JobsFailed, CurrentJob: strings.Join(s.CurrentJobs, ","),
				MetricsURL: metricsURL, Resources: p.sampler.Resources(), System: p.sampler.System(),
			}
		},
	})
	if err != nil {
		return err
	}
	if err := monitoring.RegisterWorkerMetrics(p.registry, w, p.sampler, p.identity(cfg.ID, version.String()), beater); err != nil {
		return err
	}
	if err := p.open("worker", nil, monitoring.Check{Name: "heartbeat", Run: beater.Check}); err != nil {
		return err
	}
	metricsURL = cfg.AdvertisedMetricsURL(portOf(p.server.URL()))
	// The first beat goes before the first health check, so a healthy
	// worker never starts out "degraded: no beat yet".
	w.OnChange(func(_, _ monitoring.State) { beater.Trigger() })
	if err := beater.Start(ctx); err != nil {
		return err
	}
	p.startMonitor(ctx)
	if err := w.SetState(monitoring.StateIdle); err != nil {
		return err
	}
	logger.Info("worker started", "redis", logging.RedactString(cfg.RedisURL), "metrics_url", metricsURL,
		"heartbeat_interval", cfg.HeartbeatInterval, "concurrency", cfg.Concurrency, "queue", cfg.Queue, "version", version.String())

	mux := jobs.NewMux()
	jobs.Builtins(mux, nil)
	consumer := jobs.NewConsumer(p.rdb, cfg.Queue, cfg.ID, mux, jobs.ConsumerOptions{
		Concurrency:       cfg.Concurrency,
		MaxAttempts:       cfg.MaxAttempts,
		Backoff:           cfg.RetryBackoff,
		VisibilityTimeout: cfg.VisibilityTimeout,
		Logger:            logger,
		OnStart:           func(j *jobs.Job) { w.JobStarted(j.ID, j.Type) },
		OnFinish: func(j *jobs.Job, took time.Duration, err error) {
			w.JobFinished(j.ID, j.Type, took, err)
			// The queue logs failures (WARNING, ERROR) itself and successes
			// only at DEBUG, for no-op throughput; a worker's log shows one
			// line per job, as an operator reading it expects.
			if err == nil {
				logger.InfoContext(logging.With(context.Background(), logging.KeyJobID, j.ID), "job succeeded",
					"type", j.Type, "attempt", j.Attempt, "took", took)
			}
		},
	})
	runDone := make(chan error, 1)
	go func() { runDone <- consumer.Run(ctx) }()

	var runErr error
	select {
	case <-ctx.Done():
		runErr = <-runDone
	case runErr = <-runDone: // the loop ended on its own: stop the worker
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		logger.Error("job loop ended", "error", runErr)
	}
	return shutdownWorker(p, consumer, cfg.ShutdownGrace, beater)
}

// shutdownWorker stops in the order the contracts want: STOPPING is
// announced (no new jobs), running jobs get SHUTDOWN_GRACE to finish (what
// is still unfinished stays pending for another worker), then STOPPED goes
// to the stream, the hash is deleted, and the endpoints close.
func shutdownWorker(p *process, consumer *jobs.Consumer, grace time.Duration, beater *heartbeat.Beater) error {
	logger, w := p.logger, p.state
	logger.Info("worker stopping", "running_jobs", len(w.Snapshot().CurrentJobs), "grace", grace)
	_ = w.SetState(monitoring.StateStopping)
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), grace)
	if err := consumer.Shutdown(graceCtx); err != nil {
		logger.Warn("jobs still running at the end of the grace period are left for another worker", "error", err)
	}
	cancelGrace()
	_ = w.SetState(monitoring.StateStopped)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if err := beater.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("deregister heartbeat: %w", err))
	}
	if err := p.closeServer(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		logger.Warn("worker stopped with errors", "error", err)
		return nil // the worker did stop; the errors are logged, not a failed run
	}
	logger.Info("worker stopped")
	return nil
}

func portOf(u string) int {
	i := strings.LastIndexByte(u, ':')
	if i < 0 {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimRight(u[i+1:], "/"))
	return p
}

func runHealthcheck(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "healthcheck", "[-url URL]")
	port := env.Getenv("METRICS_PORT")
	if port == "" {
		port = "9200"
	}
	url := fs.String("url", "http://"+net.JoinHostPort("127.0.0.1", port)+"/livez", "URL to probe")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := monitoring.Probe(ctx, *url); err != nil {
		return &exitError{code: 1, err: err}
	}
	return nil
}
