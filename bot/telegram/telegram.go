// Package telegram is the bot's Telegram frontend, telegram_bot: users
// send the chat commands (status, run, job, help) to a Telegram bot and
// get their answers, and later their jobs' results, in the same chat.
//
// Updates arrive at the webhook, POST /telegram/webhook, which refuses
// any request without the secret token given to setWebhook; or, for a
// bot without a public URL, by long-polling getUpdates (ModePoll, one
// replica only). Updates are handled once even when Telegram redelivers
// them. Answers go through the Bot API's sendMessage.
package telegram

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/clock"
	"github.com/botfleet/botfleet/internal/config"
)

// Name is the frontend's service name.
const Name = "telegram_bot"

// The frontend's routes, header and limits.
const (
	WebhookPath  = "/telegram/webhook"
	SecretHeader = "X-Telegram-Bot-Api-Secret-Token"
	// MaxText is the longest message Telegram takes, in UTF-16 units.
	MaxText = 4096
	// maxUpdate bounds a webhook request's body.
	maxUpdate = 1 << 20
)

// The ways updates arrive (Options.Mode).
const (
	ModeWebhook = "webhook"
	ModePoll    = "poll"
)

// Defaults of Options.
const (
	DefaultAPIURL      = "https://api.telegram.org"
	DefaultPollTimeout = 25 * time.Second
)

// Options configure the frontend. The zero value of a field is its
// default; FromEnv fills them from the environment.
type Options struct {
	// Token is the bot's token from @BotFather (TELEGRAM_BOT_TOKEN). The
	// frontend is on when it is set.
	Token string
	// Mode is ModeWebhook or ModePoll (TELEGRAM_MODE). Default
	// ModeWebhook.
	Mode string
	// WebhookSecret is the secret token setWebhook gave Telegram
	// (TELEGRAM_WEBHOOK_SECRET): the webhook refuses requests without it.
	// Required in webhook mode.
	WebhookSecret string
	// APIURL is the Bot API's base URL (TELEGRAM_API_URL). Default
	// DefaultAPIURL.
	APIURL string
	// PollTimeout is how long a getUpdates call waits for updates.
	// Default DefaultPollTimeout.
	PollTimeout time.Duration
	// HTTPClient calls the API; every call has its own deadline. Nil
	// means a client of the frontend's own.
	HTTPClient *http.Client
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeWebhook
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	o.APIURL = strings.TrimSuffix(o.APIURL, "/")
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	return o
}

// Enabled reports whether the frontend is configured (a token is set).
func (o Options) Enabled() bool { return o.Token != "" }

var (
	tokenPattern  = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
	secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
)

// FromEnv reads TELEGRAM_BOT_TOKEN, TELEGRAM_MODE, TELEGRAM_WEBHOOK_SECRET
// and TELEGRAM_API_URL through getenv (os.Getenv when nil). Every bad
// variable is named in the error, secrets masked.
func FromEnv(getenv func(string) string) (Options, error) {
	l := config.New(getenv)
	o := Options{
		Token:         l.Secret("TELEGRAM_BOT_TOKEN", tokenPattern, "the token @BotFather gave, <digits>:<letters, digits, '_' or '-'>"),
		WebhookSecret: l.Secret("TELEGRAM_WEBHOOK_SECRET", secretPattern, "1 to 256 letters, digits, '_' or '-' (what Telegram allows)"),
		Mode:          strings.ToLower(l.String("TELEGRAM_MODE", ModeWebhook)),
		APIURL:        l.URL("TELEGRAM_API_URL", DefaultAPIURL),
	}
	if o.Mode != ModeWebhook && o.Mode != ModePoll {
		l.Bad("TELEGRAM_MODE", o.Mode, "webhook or poll")
	}
	l.Requires("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_MODE", "TELEGRAM_API_URL")
	if l.Set("TELEGRAM_BOT_TOKEN") && o.Mode == ModeWebhook && !l.Set("TELEGRAM_WEBHOOK_SECRET") {
		l.Bad("TELEGRAM_WEBHOOK_SECRET", "", "a secret of 1 to 256 letters, digits, '_' or '-' for the webhook, or TELEGRAM_MODE=poll")
	}
	return o, l.Err()
}

// Frontend is the Telegram frontend. It is safe for concurrent use.
type Frontend struct {
	o      Options
	d      bot.Deps
	chat   *bot.Chat
	api    *Client
	botID  string // the token's number: the bot's id, which update ids belong to
	secret [sha256.Size]byte
}

// New returns the frontend for the bot d was made for (bot.Bot.Deps(Name)).
func New(d bot.Deps, o Options) (*Frontend, error) {
	o = o.withDefaults()
	switch {
	case !tokenPattern.MatchString(o.Token):
		return nil, errors.New("telegram: Options.Token: want the token @BotFather gave")
	case o.Mode != ModeWebhook && o.Mode != ModePoll:
		return nil, fmt.Errorf("telegram: Options.Mode %q: want webhook or poll", o.Mode)
	case o.Mode == ModeWebhook && o.WebhookSecret == "":
		return nil, errors.New("telegram: Options.WebhookSecret: required for the webhook")
	}
	botID, _, _ := strings.Cut(o.Token, ":")
	return &Frontend{o: o, d: d, api: NewClient(o), botID: botID, secret: sha256.Sum256([]byte(o.WebhookSecret)),
		chat: bot.NewChat(d, bot.Platform{HashKey: []byte(o.Token), MaxText: MaxText})}, nil
}

// Name returns "telegram_bot".
func (*Frontend) Name() string { return Name }

// Mount registers the webhook, in webhook mode. It is not behind the
// bot's bearer token, which Telegram cannot send: the secret token guards
// it.
func (f *Frontend) Mount(handle func(string, http.Handler, bool)) {
	if f.o.Mode == ModeWebhook {
		handle("POST "+WebhookPath, f.d.Metrics.CountRequests(Name, http.HandlerFunc(f.webhook)), false)
	}
}

// Run sends the results of the jobs users started, and in poll mode reads
// the updates, until ctx ends.
func (f *Frontend) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if f.o.Mode == ModePoll {
		wg.Go(func() { f.poll(ctx) })
	}
	err := f.chat.RunReplies(ctx, f.send)
	wg.Wait()
	return err
}

func (f *Frontend) webhook(w http.ResponseWriter, r *http.Request) {
	got := sha256.Sum256([]byte(r.Header.Get(SecretHeader)))
	if subtle.ConstantTimeCompare(got[:], f.secret[:]) != 1 {
		f.d.Logger.WarnContext(r.Context(), "webhook request refused: wrong secret token", "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var u Update
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxUpdate)).Decode(&u); err != nil {
		http.Error(w, "not a Telegram update", http.StatusBadRequest)
		return
	}
	if err := f.handle(r.Context(), u); err != nil {
		// Telegram delivers the update again later.
		f.d.Logger.ErrorContext(r.Context(), "update not handled; Telegram will redeliver it", "update_id", u.UpdateID, "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// handle answers an update once. Its error means that nothing was done
// and the update should come again.
func (f *Frontend) handle(ctx context.Context, u Update) error {
	m := u.Message
	if m == nil || m.From == nil || m.From.IsBot {
		return nil // an edit, a channel post, another bot: nothing to answer
	}
	id := f.botID + ":" + strconv.FormatInt(u.UpdateID, 10)
	seen, err := f.chat.Seen(ctx, id)
	if err != nil {
		return err
	}
	if seen {
		f.d.Logger.DebugContext(ctx, "update already handled", "update_id", u.UpdateID)
		return nil
	}
	msg := bot.Message{User: strconv.FormatInt(m.From.ID, 10), Text: m.Text, Route: route(m.Chat.ID, m.MessageID),
		ID: strconv.FormatInt(u.UpdateID, 10)}
	if m.Text == "" { // a photo, a sticker: no command
		f.chat.Received(ctx, msg, "none")
		return nil
	}
	reply := f.chat.Handle(ctx, msg)
	if reply.Text == "" {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, f.chat.Options().SendTimeout)
	defer cancel()
	err = f.api.SendMessage(sctx, m.Chat.ID, reply.Text, m.MessageID)
	f.chat.Answered(ctx, msg, reply, err)
	return nil
}

// route is where a job's result goes: the chat, and the message to reply
// to.
func route(chat, message int64) string {
	return strconv.FormatInt(chat, 10) + ":" + strconv.FormatInt(message, 10)
}

// send delivers a job's result to the chat that started it.
func (f *Frontend) send(ctx context.Context, r, text string) error {
	c, m, _ := strings.Cut(r, ":")
	chat, err := strconv.ParseInt(c, 10, 64)
	if err != nil {
		return fmt.Errorf("telegram: route %q: %w", r, bot.ErrUndeliverable)
	}
	message, _ := strconv.ParseInt(m, 10, 64)
	return f.api.SendMessage(ctx, chat, text, message)
}

// poll reads updates with getUpdates until ctx ends. An update is
// confirmed (the next offset) only once handled; on an error the loop
// waits, doubling up to a minute, and asks again.
func (f *Frontend) poll(ctx context.Context) {
	var offset int64
	const firstWait, maxWait = time.Second, time.Minute
	wait := firstWait
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, f.o.PollTimeout+f.chat.Options().SendTimeout)
		updates, err := f.api.GetUpdates(pctx, offset, f.o.PollTimeout)
		cancel()
		for _, u := range updates {
			if err = f.handle(ctx, u); err != nil {
				break
			}
			offset = u.UpdateID + 1
		}
		if err == nil {
			wait = firstWait
			continue
		}
		if ctx.Err() != nil {
			return
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Code == http.StatusConflict {
			err = fmt.Errorf("%w (a webhook is set: delete it with `botfleet telegram delete-webhook`, or use TELEGRAM_MODE=webhook)", err)
		}
		f.d.Logger.WarnContext(ctx, "getUpdates failed; retrying", "error", err, "retry_in", wait.String())
		if !clock.Sleep(ctx, clock.Real, wait) {
			return
		}
		wait = min(2*wait, maxWait)
	}
}
