package cli

import (
	"context"
	"fmt"

	"github.com/botfleet/botfleet/bot/sms"
)

func init() {
	register(command{name: "sms", summary: "connect the SMS frontend: set-webhook [-url URL] points the Twilio number at the bot", run: runSMS})
}

const smsUsage = `Usage:
  botfleet sms set-webhook [-url https://<public host>` + sms.WebhookPath + `]

Makes Twilio post the messages to TWILIO_FROM_NUMBER to the URL (default
SMS_PUBLIC_URL). Reads TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and
TWILIO_API_URL.`

// runSMS sets the Twilio number's messaging webhook.
func runSMS(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "set-webhook" {
		fmt.Fprintln(env.Stderr, smsUsage)
		return errUsage
	}
	o, err := sms.FromEnv(env.Getenv)
	fs := newFlags(env, "sms set-webhook", "[-url URL]")
	hook := fs.String("url", o.PublicURL, "the public https URL of the bot's "+sms.WebhookPath+" (default SMS_PUBLIC_URL)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := badEnvironment(err, unset(env, "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER")); err != nil {
		return err
	}
	if err := publicURL("url", *hook); err != nil {
		fmt.Fprintf(env.Stderr, "botfleet sms set-webhook: %v (or set SMS_PUBLIC_URL)\n\n%s\n", err, smsUsage)
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, platformTimeout)
	defer cancel()
	number, err := sms.NewClient(o).SetWebhook(ctx, *hook)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Twilio posts the messages to %s (%s) to %s.\n", o.From, number, *hook)
	return nil
}
