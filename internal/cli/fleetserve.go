package cli

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/internal/config"
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
	p, err := newProcess(ctx, env, "fleet", "", cfg.Process, lc)
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.open("fleet", func(srv *monitoring.Server) error { return mountFleet(srv, p.rdb, p.registry) }); err != nil {
		return err
	}
	p.startMonitor(ctx)
	_ = p.state.SetState(monitoring.StateIdle)
	url := p.server.URL()
	p.logger.Info("fleet view serving", "url", url, "dashboard", url+"/", "discovery", url+"/api/fleet/targets")
	<-ctx.Done()
	if err := p.closeServer(); err != nil {
		p.logger.Warn("closing the endpoints", "error", err)
	}
	return nil
}
