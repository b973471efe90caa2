package cli

import (
	"context"
	"errors"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/bot/telegram"
	"github.com/botfleet/botfleet/internal/version"
)

func init() {
	register(command{name: "bot", summary: "run the bot service: frontends (web API on METRICS_PORT; Telegram when configured) submit jobs to the fleet", run: runBot})
}

// runBot runs the bot with the web frontend, the chat frontends whose
// variables are set, and the built-in job types, configured by the
// environment.
func runBot(ctx context.Context, env *Env, args []string) error {
	if err := parse(newFlags(env, "bot", ""), args); err != nil {
		return err
	}
	opts, err := bot.FromEnv(env.Getenv)
	tg, tgErr := telegram.FromEnv(env.Getenv)
	logger, closeLogs, err := setupLogs(env, errors.Join(err, tgErr), "bot", "", opts.Deployment)
	if err != nil {
		return err
	}
	defer closeLogs()
	opts.Logger, opts.Version = logger, version.String()
	b, err := bot.New(opts)
	if err != nil {
		return err
	}
	if tg.Enabled() {
		f, err := telegram.New(b.Deps(telegram.Name), tg)
		if err != nil {
			return err
		}
		if err := b.Add(f); err != nil {
			return err
		}
	}
	return b.Run(ctx)
}
