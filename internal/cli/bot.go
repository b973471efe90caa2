package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

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
	p, err := newProcess(ctx, env, "bot", "", cfg.Process, lc)
	if err != nil {
		return err
	}
	defer p.close()
	logger, deploy := p.logger, p.deploy

	queue := jobs.NewQueue(p.rdb, cfg.Queue, jobs.QueueOptions{MaxAttempts: cfg.MaxAttempts})
	types := jobs.NewMux()
	jobs.Builtins(types, nil)
	metrics, err := bot.NewMetrics(p.registry, prometheus.Labels{
		"service": "bot", "hostname": deploy.Hostname, "container_id": deploy.ContainerID,
		"deployment_env": deploy.Env, "region": deploy.Region, "version": version.String(), "go_version": version.GoVersion(),
	})
	if err != nil {
		return err
	}
	if err := p.registry.Register(bot.NewQueueCollector(queue, cfg.Queue)); err != nil {
		return err
	}
	frontends := []bot.Frontend{
		bot.NewWeb(bot.Deps{Queue: queue, Types: types, Metrics: metrics, Logger: bot.FrontendLogger(logger, "web_frontend")}),
	}
	err = p.open("bot", func(srv *monitoring.Server) error {
		for _, f := range frontends {
			f.Mount(srv.Handle)
		}
		return mountFleet(srv, p.rdb, p.registry)
	})
	if err != nil {
		return err
	}
	p.startMonitor(ctx)
	if err := p.state.SetState(monitoring.StateIdle); err != nil {
		return err
	}
	logger.Info("bot started", "redis", logging.RedactString(cfg.RedisURL), "url", p.server.URL(), "queue", cfg.Queue,
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
	_ = p.state.SetState(monitoring.StateStopping)
	if err := p.closeServer(); err != nil {
		logger.Warn("closing the endpoints", "error", err)
	}
	_ = p.state.SetState(monitoring.StateStopped)
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
