package cli

import (
	"context"
	"fmt"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/version"
)

func init() {
	register(command{name: "fleet", summary: "fleet serve: the fleet API, Prometheus discovery, fleet metrics and dashboard, without a bot", run: runFleet})
}

// runFleet serves the fleet view alone: a bot with no frontend.
func runFleet(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(env.Stderr, "Usage: botfleet fleet serve\n\nServes, on METRICS_PORT (default 9200): GET / (dashboard), /api/fleet, /api/fleet/targets (Prometheus HTTP SD), /metrics (fleet_*), /health.")
		return errUsage
	}
	if err := parse(newFlags(env, "fleet serve", ""), args[1:]); err != nil {
		return err
	}
	opts, err := bot.FromEnv(env.Getenv)
	logger, closeLogs, err := setupLogs(env, err, "fleet", "", opts.Deployment)
	if err != nil {
		return err
	}
	defer closeLogs()
	opts.Logger, opts.Version, opts.NoWeb, opts.NoAdmin, opts.Service = logger, version.String(), true, true, "fleet"
	b, err := bot.New(opts)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
