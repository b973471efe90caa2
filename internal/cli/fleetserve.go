package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

func init() {
	register(command{name: "fleet", summary: "fleet serve: the fleet API, Prometheus discovery, fleet metrics and dashboard, without a bot", run: runFleet})
}

// mountFleet serves the fleet view on a process's monitoring server: the
// JSON API and Prometheus discovery (protected by the token when one is
// set), the dashboard page at / (open: it fetches the protected API), and
// the fleet_* metrics on reg.
func mountFleet(srv *monitoring.Server, rdb *redis.Client, reg prometheus.Registerer) error {
	reader := fleet.NewReader(rdb, fleet.Options{})
	reader.Mount(srv.Handle)
	dash := fleet.DashboardHandler()
	// "/{$}" is the root alone: "/" would swallow every unknown path,
	// which must stay a 404.
	srv.Handle("GET /{$}", dash, false)
	srv.Handle("GET /assets/", dash, false)
	return reg.Register(fleet.NewCollector(reader))
}

func runFleet(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(env.Stderr, "Usage: botfleet fleet serve\n\nServes, on METRICS_PORT (default 9200): GET / (dashboard), /api/fleet, /api/fleet/targets (Prometheus HTTP SD), /metrics (fleet_*), /health.")
		return errUsage
	}
	fs := newFlags(env, "fleet serve", "")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := config.LoadBot(env.Getenv)
	lc, err := loadLogging(env, err)
	if err != nil {
		return err
	}
	logger, closeLogs, err := logging.Setup(logging.Options{Service: "fleet", Config: &lc, Stdout: env.Stdout})
	if err != nil {
		return err
	}
	defer closeLogs()
	cfg.Redis.ContextTimeoutEnabled = true
	rdb := redis.NewClient(cfg.Redis)
	defer rdb.Close()

	reg := monitoring.NewRegistry()
	state := monitoring.NewWorker("", nil)
	sampler := monitoring.NewSampler(0)
	sampler.Start(ctx)
	defer sampler.Stop()
	mon := monitoring.NewMonitor(monitoring.MonitorOptions{Service: "fleet", Worker: state, Sampler: sampler, Logger: logger,
		Checks: []monitoring.Check{{Name: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}}})
	srv := monitoring.NewServer(monitoring.ServerOptions{Addr: cfg.MetricsAddr, AuthToken: cfg.AuthToken, Gatherer: reg, Monitor: mon, Logger: logger})
	if err := mountFleet(srv, rdb, reg); err != nil {
		return err
	}
	if err := srv.Open(); err != nil {
		return fmt.Errorf("METRICS_PORT=%d: %w", cfg.MetricsPort, err)
	}
	mon.Start(ctx)
	defer mon.Stop()
	_ = state.SetState(monitoring.StateIdle)
	logger.Info("fleet view serving", "url", srv.URL(), "dashboard", srv.URL()+"/", "discovery", srv.URL()+"/api/fleet/targets")
	<-ctx.Done()
	return closeServer(logger, srv)
}

func closeServer(logger *slog.Logger, srv *monitoring.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("closing the endpoints", "error", err)
	}
	return nil
}
