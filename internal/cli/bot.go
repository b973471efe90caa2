package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/bot"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/internal/version"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

func init() {
	register(command{name: "bot", summary: "run the bot service: frontends (web API on METRICS_PORT) submit jobs to the fleet", run: runBot})
}

func runBot(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bot", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.LoadBot(env.Getenv)
	lc, err := loadLogging(env, err)
	if err != nil {
		return err
	}
	logger, closeLogs, err := logging.Setup(logging.Options{Service: "bot", Config: &lc, Stdout: env.Stdout})
	if err != nil {
		return err
	}
	defer closeLogs()
	deploy := logging.DetectDeployment()

	cfg.Redis.ContextTimeoutEnabled = true // a slow Redis must not hold a beat or a request past its context
	rdb := redis.NewClient(cfg.Redis)
	defer rdb.Close()
	queue := jobs.NewQueue(rdb, cfg.Queue, jobs.QueueOptions{MaxAttempts: cfg.MaxAttempts})
	types := jobs.NewMux()
	jobs.Builtins(types, nil)

	reg := monitoring.NewRegistry()
	metrics, err := bot.NewMetrics(reg, prometheus.Labels{
		"service": "bot", "hostname": deploy.Hostname, "container_id": deploy.ContainerID,
		"deployment_env": deploy.Env, "region": deploy.Region, "version": version.String(), "go_version": version.GoVersion(),
	})
	if err != nil {
		return err
	}
	if err := reg.Register(bot.NewQueueCollector(queue, cfg.Queue)); err != nil {
		return err
	}

	state := monitoring.NewWorker("", nil)
	sampler := monitoring.NewSampler(0)
	sampler.Start(ctx)
	defer sampler.Stop()
	mon := monitoring.NewMonitor(monitoring.MonitorOptions{
		Service: "bot", Worker: state, Sampler: sampler, Logger: logger,
		Checks: []monitoring.Check{{Name: "redis", Critical: false, Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}},
	})
	srv := monitoring.NewServer(monitoring.ServerOptions{Addr: cfg.MetricsAddr, AuthToken: cfg.AuthToken, Gatherer: reg, Monitor: mon, Logger: logger})

	frontends := []bot.Frontend{
		bot.NewWeb(bot.Deps{Queue: queue, Types: types, Metrics: metrics, Logger: bot.FrontendLogger(logger, "web_frontend")}),
	}
	for _, f := range frontends {
		f.Mount(srv.Handle)
	}
	if err := mountFleet(srv, rdb, reg); err != nil {
		return err
	}

	if err := srv.Open(); err != nil {
		return fmt.Errorf("METRICS_PORT=%d: %w", cfg.MetricsPort, err)
	}
	mon.Start(ctx)
	defer mon.Stop()
	if err := state.SetState(monitoring.StateIdle); err != nil {
		return err
	}
	logger.Info("bot started", "redis", logging.RedactString(cfg.RedisURL), "url", srv.URL(), "queue", cfg.Queue,
		"frontends", frontendNames(frontends), "version", version.String())

	errc := make(chan error, len(frontends))
	for _, f := range frontends {
		go func() {
			if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("frontend %s: %w", f.Name(), err)
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	logger.Info("bot stopping")
	_ = state.SetState(monitoring.StateStopping)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("closing the endpoints", "error", err)
	}
	_ = state.SetState(monitoring.StateStopped)
	logger.Info("bot stopped")
	return runErr
}

func frontendNames(fs []bot.Frontend) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name()
	}
	return out
}
