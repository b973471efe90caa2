package cli

import (
	"context"
	"fmt"

	"github.com/botfleet/botfleet/bot/telegram"
)

func init() {
	register(command{name: "telegram", summary: "connect the Telegram frontend: set-webhook -url URL, or delete-webhook to poll", run: runTelegram})
}

const telegramUsage = `Usage:
  botfleet telegram set-webhook -url https://<public host>` + telegram.WebhookPath + ` [-drop-pending]
  botfleet telegram delete-webhook [-drop-pending]     (for TELEGRAM_MODE=poll)

set-webhook gives Telegram the URL and TELEGRAM_WEBHOOK_SECRET, which the
bot checks on every update. Both read TELEGRAM_BOT_TOKEN and TELEGRAM_API_URL.`

// runTelegram registers or removes the bot's webhook with the Bot API.
func runTelegram(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || (args[0] != "set-webhook" && args[0] != "delete-webhook") {
		fmt.Fprintln(env.Stderr, telegramUsage)
		return errUsage
	}
	sub := args[0]
	fs := newFlags(env, "telegram "+sub, "")
	drop := fs.Bool("drop-pending", false, "drop the updates Telegram holds for the bot")
	hook := fs.String("url", "", "the public https URL of the bot's "+telegram.WebhookPath+" (set-webhook)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	o, err := telegram.FromEnv(env.Getenv)
	if err := badEnvironment(err, unset(env, "TELEGRAM_BOT_TOKEN")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, platformTimeout)
	defer cancel()
	c := telegram.NewClient(o)
	if sub == "delete-webhook" {
		if err := c.DeleteWebhook(ctx, *drop); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "Telegram holds updates for getUpdates now: run the bot with TELEGRAM_MODE=poll.")
		return nil
	}
	if err := publicURL("url", *hook); err != nil {
		fmt.Fprintf(env.Stderr, "botfleet telegram set-webhook: %v\n\n%s\n", err, telegramUsage)
		return errUsage
	}
	if err := badEnvironment(unset(env, "TELEGRAM_WEBHOOK_SECRET")); err != nil {
		return err
	}
	if err := c.SetWebhook(ctx, *hook, o.WebhookSecret, *drop); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Telegram posts the bot's messages to %s, with TELEGRAM_WEBHOOK_SECRET in %s.\n", *hook, telegram.SecretHeader)
	return nil
}
