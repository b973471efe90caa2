package cli

import (
	"context"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/version"
)

func init() {
	register(command{name: "bot", summary: "run the bot service: frontends (web API on METRICS_PORT) submit jobs to the fleet", run: runBot})
}

// runBot runs the bot with the web frontend and the built-in job types,
// configured by the environment.
func runBot(ctx context.Context, env *Env, args []string) error {
	if err := parse(newFlags(env, "bot", ""), args); err != nil {
		return err
	}
	opts, err := bot.FromEnv(env.Getenv)
	logger, closeLogs, err := setupLogs(env, err, "bot", "", opts.Deployment)
	if err != nil {
		return err
	}
	defer closeLogs()
	opts.Logger, opts.Version = logger, version.String()
	b, err := bot.New(opts)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
