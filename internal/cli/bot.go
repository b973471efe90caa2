package cli

import (
	"context"
	"errors"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/bot/discord"
	"github.com/botfleet/botfleet/bot/sms"
	"github.com/botfleet/botfleet/bot/telegram"
	"github.com/botfleet/botfleet/internal/version"
)

func init() {
	register(command{name: "bot", summary: "run the bot service: frontends (web API on METRICS_PORT; Telegram, Discord, SMS when configured) submit jobs to the fleet", run: runBot})
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
	dc, dcErr := discord.FromEnv(env.Getenv)
	sm, smErr := sms.FromEnv(env.Getenv)
	logger, closeLogs, err := setupLogs(env, errors.Join(err, tgErr, dcErr, smErr), "bot", "", opts.Deployment)
	if err != nil {
		return err
	}
	defer closeLogs()
	opts.Logger, opts.Version = logger, version.String()
	b, err := bot.New(opts)
	if errors.Is(err, bot.ErrUnprotected) {
		return &exitError{code: 2, err: err} // a configuration error, as a bad variable is
	}
	if err != nil {
		return err
	}
	chats := []struct {
		on  bool
		add func() (bot.Frontend, error)
	}{
		{tg.Enabled(), func() (bot.Frontend, error) { return telegram.New(b.Deps(telegram.Name), tg) }},
		{dc.Enabled(), func() (bot.Frontend, error) { return discord.New(b.Deps(discord.Name), dc) }},
		{sm.Enabled(), func() (bot.Frontend, error) { return sms.New(b.Deps(sms.Name), sm) }},
	}
	for _, c := range chats {
		if !c.on {
			continue
		}
		f, err := c.add()
		if err == nil {
			err = b.Add(f)
		}
		if err != nil {
			return err
		}
	}
	return b.Run(ctx)
}
