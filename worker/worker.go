// Package worker is the composition root of a botfleet worker process, in
// the role of asynq's Server: it joins a fleet with the job handlers you
// register, and gives the process everything the fleet expects of a
// worker: /health, /livez, /readyz and /metrics on its port, a heartbeat
// in Redis that the fleet view and Prometheus discovery read, the job loop
// on the queue, and an ordered shutdown.
//
//	mux := jobs.NewMux()
//	jobs.Builtins(mux, nil)               // keep the built-in types, or not
//	mux.HandleFunc("report.render", render) // and add your own
//	opts, err := worker.FromEnv(nil)       // README's variables, validated
//	opts.Mux = mux
//	w, err := worker.New(opts)
//	err = w.Run(ctx)                       // until ctx ends, then the ordered shutdown
//
// When Run's context ends the worker announces STOPPING (it takes no new
// job), gives the running jobs ShutdownGrace to finish (an unfinished one
// stays pending for another worker), writes a last STOPPED beat, removes
// its heartbeat hash, and closes its endpoints.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/internal/process"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

// ErrRunning is returned by Run on a Worker that was already run.
var ErrRunning = errors.New("worker: Run called twice")

// deregisterTimeout bounds the last beat and the hash's removal at
// shutdown, so a hung Redis cannot hold the exit.
const deregisterTimeout = 3 * time.Second

// Worker is one fleet member. Create it with New and call Run once. Its
// methods are safe for concurrent use.
type Worker struct {
	o        Options
	identity heartbeat.Identity
	logger   *slog.Logger

	quiet atomic.Bool // an operator quieted the worker (its control key)

	mu      sync.Mutex
	ran     bool
	url     string
	started chan struct{} // closed once the endpoints listen
}

// New checks o and returns a Worker; nothing starts before Run. An error
// names the option that is wrong.
func New(o Options) (*Worker, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Mux == nil {
		if _, err := jobs.ParseFetchAllow(strings.Join(o.FetchAllow, ",")); err != nil {
			return nil, fmt.Errorf("worker: Options.FetchAllow: %w", err)
		}
		o.Mux = jobs.NewMux()
		jobs.Builtins(o.Mux, &jobs.BuiltinOptions{Fetch: jobs.FetchOptions{Allow: o.FetchAllow}, Logger: o.Logger})
	}
	if len(o.Mux.Types()) == 0 {
		return nil, errors.New("worker: Options.Mux has no job handler")
	}
	if o.Deployment == nil {
		d := logging.DetectDeployment()
		o.Deployment = &d
	}
	if o.ID == "" {
		o.ID = config.DefaultWorkerID(*o.Deployment)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.Addr == "" {
		o.Addr = monitoring.DefaultAddr
	}
	d := o.Deployment
	id := heartbeat.Identity{WorkerID: o.ID, Service: "worker", Hostname: d.Hostname, ContainerID: d.ContainerID,
		DeploymentEnv: d.Env, Region: d.Region, Version: o.Version}
	logger := o.Logger.With(logging.KeyService, id.Service, logging.KeyWorkerID, id.WorkerID)
	return &Worker{o: o, identity: id, logger: logger, started: make(chan struct{})}, nil
}

// Identity returns who the worker is: the fields of its heartbeat, log
// records and metric labels.
func (w *Worker) Identity() heartbeat.Identity { return w.identity }

// URL returns the base URL of the worker's endpoints, such as
// "http://127.0.0.1:9201", once Run has started listening; "" before.
func (w *Worker) URL() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.url
}

// Quiet reports whether an operator quieted the worker: it finishes its
// running jobs and takes no new ones until the request is withdrawn.
func (w *Worker) Quiet() bool { return w.quiet.Load() }

// Started is closed once Run listens, or returns with an error before.
func (w *Worker) Started() <-chan struct{} { return w.started }

// Run runs the worker until ctx ends, then shuts it down in order. It
// returns nil after a shutdown that ctx asked for, and an error when the
// worker could not start (a taken port, a bad option) or its job loop
// failed. Redis being down is not an error: the worker reports itself
// degraded and keeps trying.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.ran {
		w.mu.Unlock()
		return ErrRunning
	}
	w.ran = true
	w.mu.Unlock()
	startedOnce := sync.OnceFunc(func() { close(w.started) })
	defer startedOnce()

	rdb, owned, err := process.Redis(w.o.Redis, w.o.RedisURL)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if owned {
		defer rdb.Close()
	}
	if err := process.CheckRedis(ctx, rdb); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	p := process.New(ctx, process.Options{WorkerID: w.o.ID, Redis: rdb, Registry: w.o.Registry, Logger: w.logger})
	defer p.Close()
	r, err := w.start(ctx, rdb, p)
	startedOnce()
	if err != nil {
		return err
	}
	// A stop request through Redis ends the job loop as ctx ending does.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	advertiseDone := make(chan struct{})
	go func() {
		defer close(advertiseDone)
		w.advertise(runCtx, rdb, r.beater.Interval())
	}()
	ctl := &controller{rdb: rdb, id: w.o.ID, consumer: r.consumer, quiet: &w.quiet,
		changed: r.beater.Trigger, stopRun: stopRun, logger: w.logger}
	ctl.start(runCtx)
	runErr := r.consumer.Run(runCtx)
	stopRun()
	ctl.wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		w.logger.Error("job loop ended", "error", runErr)
	} else {
		runErr = nil
	}
	r.shutdown(w.o.ShutdownGrace)
	<-advertiseDone
	return runErr
}

// advertise tells the queue's producers which job types this worker runs
// (jobs.AdvertiseTypes), every interval until ctx ends, so a bot accepts
// them without knowing them itself.
func (w *Worker) advertise(ctx context.Context, rdb redis.UniversalClient, interval time.Duration) {
	types := w.o.Mux.Types()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, min(interval, 5*time.Second))
		if err := jobs.AdvertiseTypes(actx, rdb, w.o.Queue, types, 3*interval); err != nil && ctx.Err() == nil {
			w.logger.Debug("advertising job types failed; will retry", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// running is a started worker's parts, for the shutdown.
type running struct {
	p        *process.Process
	beater   *heartbeat.Beater
	consumer *jobs.Consumer
	logger   *slog.Logger
}

// start opens the endpoints, registers the metrics, starts the heartbeat
// (the first beat goes before the first health check, so a healthy worker
// never starts out "degraded: no beat yet") and builds the job loop.
func (w *Worker) start(ctx context.Context, rdb redis.UniversalClient, p *process.Process) (*running, error) {
	o, state := w.o, p.State
	var metricsURL string // set once the server has its port
	beater, err := heartbeat.New(rdb, heartbeat.Options{
		Interval: o.HeartbeatInterval, TTL: o.HeartbeatTTL, StreamMaxLen: o.HeartbeatStreamMaxLen, Logger: w.logger,
		StateIndex: true,
		Report: func() heartbeat.Status {
			s := state.Snapshot()
			return heartbeat.Status{
				Identity: w.identity, State: s.State.String(), StartedAt: s.StartedAt,
				JobsProcessed: s.JobsProcessed, JobsFailed: s.JobsFailed, CurrentJob: strings.Join(s.CurrentJobs, ","),
				MetricsURL: metricsURL, Resources: p.Sampler.Resources(), System: p.Sampler.System(),
				Quiet: w.quiet.Load(),
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if err := monitoring.RegisterWorkerMetrics(p.Registry, state, p.Sampler, w.identity, beater); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	checks := append([]monitoring.Check{{Name: "heartbeat", Run: beater.Check}}, o.Checks...)
	if err := p.Listen(process.Options{Service: "worker", Addr: o.Addr, AuthToken: o.AuthToken, Checks: checks}); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	metricsURL = config.AdvertisedMetricsURL(o.AdvertiseURL, o.Addr, p.Port())
	w.mu.Lock()
	w.url = p.Server.URL()
	w.mu.Unlock()
	state.OnChange(func(old, new monitoring.State) {
		// Lifecycle changes beat at once; busy/idle flips, which come with
		// every job, coalesce into one beat per MinGap.
		if flip(old) && flip(new) {
			beater.TriggerSoon()
		} else {
			beater.Trigger()
		}
	})
	if err := beater.Start(ctx); err != nil {
		_ = p.CloseServer()
		return nil, fmt.Errorf("worker: %w", err)
	}
	p.StartMonitor(ctx)
	if err := state.SetState(monitoring.StateIdle); err != nil {
		return nil, err
	}
	w.logger.Info("worker started", "redis", redisDescription(o), "metrics_url", metricsURL,
		"heartbeat_interval", beater.Interval(), "concurrency", max(o.Concurrency, 1), "queue", queueName(o.Queue),
		"types", o.Mux.Types(), "version", o.Version)
	consumer := jobs.NewConsumer(rdb, o.Queue, o.ID, o.Mux, jobs.ConsumerOptions{
		Concurrency: o.Concurrency, MaxAttempts: o.MaxAttempts, Backoff: o.RetryBackoff,
		VisibilityTimeout: o.VisibilityTimeout, Logger: w.logger,
		OnStart:  func(j *jobs.Job) { state.JobStarted(j.ID, j.Type) },
		OnFinish: w.finished(state),
		OnDead:   func(*jobs.Job, error) { state.JobDead() },
	})
	return &running{p: p, beater: beater, consumer: consumer, logger: w.logger}, nil
}

// flip reports whether s is one of the states a worker moves between with
// every job.
func flip(s monitoring.State) bool { return s == monitoring.StateIdle || s == monitoring.StateBusy }

// finished records a finished job. The queue logs failures (WARNING,
// ERROR) itself and successes only at DEBUG, for no-op throughput; a
// worker's log shows one line per job, as an operator reading it expects.
func (w *Worker) finished(state *monitoring.Worker) func(*jobs.Job, time.Duration, error) {
	return func(j *jobs.Job, took time.Duration, err error) {
		state.JobFinished(j.ID, j.Type, took, err)
		if err == nil {
			w.logger.InfoContext(logging.With(context.Background(), logging.KeyJobID, j.ID), "job succeeded",
				"type", j.Type, "attempt", j.Attempt, "took", took)
		}
	}
}

// shutdown stops in the order the contracts want: STOPPING is announced
// (no new jobs), running jobs get the grace to finish (what is still
// unfinished stays pending for another worker), then STOPPED goes to the
// stream, the hash is deleted, and the endpoints close. Every Redis wait
// is bounded, so a hung Redis cannot hold the exit past grace plus a few
// seconds.
func (r *running) shutdown(grace time.Duration) {
	state := r.p.State
	r.logger.Info("worker stopping", "running_jobs", len(state.Snapshot().CurrentJobs), "grace", grace)
	_ = state.SetState(monitoring.StateStopping)
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), grace)
	if err := r.consumer.Shutdown(graceCtx); err != nil {
		r.logger.Warn("jobs still running at the end of the grace period are left for another worker", "error", err)
	}
	cancelGrace()
	_ = state.SetState(monitoring.StateStopped)
	ctx, cancel := context.WithTimeout(context.Background(), deregisterTimeout)
	defer cancel()
	var errs []error
	if err := r.beater.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("deregister heartbeat: %w", err))
	}
	if err := r.p.CloseServer(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		r.logger.Warn("worker stopped with errors", "error", err)
		return // the worker did stop; the errors are logged, not a failed run
	}
	r.logger.Info("worker stopped")
}

func redisDescription(o Options) string {
	if o.Redis != nil {
		return "(client given)"
	}
	if o.RedisURL == "" {
		return config.DefaultRedisURL
	}
	return logging.RedactString(o.RedisURL)
}

func queueName(q string) string {
	if q == "" {
		return jobs.DefaultQueue
	}
	return q
}
