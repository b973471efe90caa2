package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

// loadLogging reads the LOG_* variables; with the process's own
// variables it makes the one error a user sees for a bad environment.
func loadLogging(env *Env, other error) (logging.Config, error) {
	lc, err := logging.ConfigFromEnv(env.Getenv)
	if err := errors.Join(other, err); err != nil {
		return lc, &exitError{code: 2, err: fmt.Errorf("bad environment:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return lc, nil
}

// process is what every long-running botfleet command runs: logging set
// up, the deployment detected, a Redis client, the state machine, the
// resource sampler, a registry, and, after open, the health monitor and the
// endpoint server.
type process struct {
	cfg       config.Process
	logger    *slog.Logger
	closeLogs func() error
	deploy    logging.Deployment
	rdb       *redis.Client
	state     *monitoring.Worker
	sampler   *monitoring.Sampler
	registry  *prometheus.Registry
	monitor   *monitoring.Monitor
	server    *monitoring.Server
}

// newProcess sets up logging as service (and worker id, for a worker) and
// starts the sampler. Call close when done.
func newProcess(ctx context.Context, env *Env, service, workerID string, pc config.Process, lc logging.Config) (*process, error) {
	logger, closeLogs, err := logging.Setup(logging.Options{Service: service, WorkerID: workerID, Config: &lc, Stdout: env.Stdout})
	if err != nil {
		return nil, err
	}
	pc.Redis.ContextTimeoutEnabled = true // a slow Redis must not hold a beat or a request past its context
	p := &process{
		cfg: pc, logger: logger, closeLogs: closeLogs, deploy: logging.DetectDeployment(),
		rdb: redis.NewClient(pc.Redis), state: monitoring.NewWorker(workerID, nil),
		sampler: monitoring.NewSampler(0), registry: monitoring.NewRegistry(),
	}
	p.sampler.Start(ctx)
	return p, nil
}

// open creates the monitor (a Redis check plus checks) and the server,
// lets mount add routes, and listens: a taken port is an error naming
// METRICS_PORT. The monitor is started separately, by startMonitor.
func (p *process) open(service string, mount func(*monitoring.Server) error, checks ...monitoring.Check) error {
	checks = append([]monitoring.Check{{Name: "redis", Run: func(ctx context.Context) error { return p.rdb.Ping(ctx).Err() }}}, checks...)
	p.monitor = monitoring.NewMonitor(monitoring.MonitorOptions{Service: service, Worker: p.state, Sampler: p.sampler, Logger: p.logger, Checks: checks})
	p.server = monitoring.NewServer(monitoring.ServerOptions{Addr: p.cfg.MetricsAddr, AuthToken: p.cfg.AuthToken,
		Gatherer: p.registry, Monitor: p.monitor, Logger: p.logger})
	if mount != nil {
		if err := mount(p.server); err != nil {
			return err
		}
	}
	if err := p.server.Open(); err != nil {
		return fmt.Errorf("METRICS_PORT=%d: %w", p.cfg.MetricsPort, err)
	}
	return nil
}

// startMonitor runs the health checks once, then in the background.
func (p *process) startMonitor(ctx context.Context) { p.monitor.Start(ctx) }

// closeServer stops serving, bounded by a few seconds.
func (p *process) closeServer() error {
	if p.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.server.Close(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("close endpoints: %w", err)
	}
	return nil
}

// close releases what newProcess and open started; the server is closed by
// the command, in its own order.
func (p *process) close() {
	if p.monitor != nil {
		p.monitor.Stop()
	}
	p.sampler.Stop()
	_ = p.rdb.Close()
	_ = p.closeLogs()
}

// identity is this process's labels, as the worker_* metrics carry them.
func (p *process) identity(workerID, version string) monitoring.Identity {
	return monitoring.Identity{WorkerID: workerID, Hostname: p.deploy.Hostname, ContainerID: p.deploy.ContainerID,
		DeploymentEnv: p.deploy.Env, Region: p.deploy.Region, Version: version}
}
