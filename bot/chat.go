package bot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf16"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/internal/clock"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// Defaults of ChatOptions.
const (
	DefaultRateLimit    = 20
	DefaultRateWindow   = time.Minute
	DefaultMaxPayload   = 4096
	DefaultReplyWait    = jobs.DefaultResultTTL
	DefaultPollInterval = time.Second
	DefaultSendTimeout  = 10 * time.Second
)

// ChatOptions configure what the chat frontends (Telegram, Discord, SMS)
// share. The zero value of every field is its default.
type ChatOptions struct {
	// RateLimit is how many messages one chat user may send per
	// RateWindow (CHAT_RATE_LIMIT); more are refused, and the user is told
	// once. Default DefaultRateLimit; negative means no limit
	// (CHAT_RATE_LIMIT=0).
	RateLimit int
	// RateWindow is the rate limit's window (CHAT_RATE_WINDOW). Default
	// DefaultRateWindow.
	RateWindow time.Duration
	// MaxPayload bounds a run command's payload, in bytes of JSON
	// (CHAT_MAX_PAYLOAD). Default DefaultMaxPayload.
	MaxPayload int
	// ReplyWait is how long a job started from a chat is waited for; a
	// result that comes later is not sent. Default DefaultReplyWait, the
	// queue's result TTL.
	ReplyWait time.Duration
	// PollInterval is how often the jobs owed a reply are checked.
	// Default DefaultPollInterval.
	PollInterval time.Duration
	// SendTimeout bounds each call to a platform's API. Default
	// DefaultSendTimeout.
	SendTimeout time.Duration
	// Clock is what the reply loop waits on between polls; nil means the
	// wall clock.
	Clock jobs.Clock
}

func (o ChatOptions) withDefaults() ChatOptions {
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateWindow <= 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.ReplyWait <= 0 {
		o.ReplyWait = DefaultReplyWait
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	o.Clock = clock.Or(o.Clock)
	return o
}

// chatFromEnv reads CHAT_RATE_LIMIT, CHAT_RATE_WINDOW and CHAT_MAX_PAYLOAD.
func chatFromEnv(l *config.Loader) ChatOptions {
	o := ChatOptions{
		RateLimit:  l.Int("CHAT_RATE_LIMIT", DefaultRateLimit, 0, 1_000_000),
		RateWindow: l.Seconds("CHAT_RATE_WINDOW", DefaultRateWindow, time.Second, config.MaxSeconds),
		MaxPayload: l.Int("CHAT_MAX_PAYLOAD", DefaultMaxPayload, 2, jobs.MaxPayloadSize),
	}
	if o.RateLimit == 0 {
		o.RateLimit = -1
	}
	return o
}

// Platform describes a chat platform to NewChat.
type Platform struct {
	// HashKey keys the hashes that stand for users in logs and Redis: a
	// secret of the platform's (its token), so that nobody can find a
	// user's hash by hashing every phone number.
	HashKey []byte
	// MaxText is the longest message the platform takes, in UTF-16 code
	// units (what Telegram counts; Discord's and Twilio's characters are
	// never more). Longer replies are cut.
	MaxText int
	// ReplyWindow is how long a reply route stays usable (Discord's
	// interaction tokens: 15 minutes). Zero means ChatOptions.ReplyWait;
	// a longer one is cut to it.
	ReplyWindow time.Duration
}

// Chat is what the chat frontends share: one command language (status,
// run, job, help), a rate limit per user, the updates already handled,
// and the replies owed when the jobs users started finish, kept in Redis
// so that any replica answers and only one does. Users appear in logs and
// Redis only as keyed hashes. A Chat is safe for concurrent use.
type Chat struct {
	d     Deps
	o     ChatOptions
	p     Platform
	fleet *fleet.Reader
}

// NewChat returns the Chat of the frontend d was made for.
func NewChat(d Deps, p Platform) *Chat {
	o := d.Chat.withDefaults()
	if p.ReplyWindow <= 0 || p.ReplyWindow > o.ReplyWait {
		p.ReplyWindow = o.ReplyWait
	}
	return &Chat{d: d, o: o, p: p, fleet: fleet.NewReader(d.Redis, fleet.Options{})}
}

// Options returns the chat options in effect, defaults filled in.
func (c *Chat) Options() ChatOptions { return c.o }

// Message is one message a user sent.
type Message struct {
	// User is the sender's id on the platform (a user id, a phone
	// number). Only its hash is logged or stored.
	User string
	// Text is what the user wrote.
	Text string
	// Route says where the result of a job the message starts goes, in
	// the frontend's own encoding (a chat id, an interaction token, a
	// phone number). It is kept in Redis until the reply is sent, never
	// logged.
	Route string
	// ID is the platform's id of the message (an update id, an
	// interaction id, a message SID), logged to follow it.
	ID string
}

// Reply is the answer to a Message.
type Reply struct {
	// Text is the answer; "" when nothing is to be sent (a user over the
	// rate limit, who was told once).
	Text string
	// JobID is the job a run command queued, if any.
	JobID string
}

// Handle answers m in the command language: it logs message_received,
// applies the rate limit, and runs the command.
func (c *Chat) Handle(ctx context.Context, m Message) Reply {
	return c.Do(ctx, m, ParseCommand(m.Text))
}

// Do is Handle for a command the platform parsed itself (a Discord slash
// command's options).
func (c *Chat) Do(ctx context.Context, m Message, cmd Command) Reply {
	c.Received(ctx, m, cmd.Name)
	user := c.UserHash(m.User)
	if ok, tell := c.allow(ctx, user); !ok {
		if tell {
			return Reply{Text: fmt.Sprintf("Slow down: at most %d messages per %s. Later ones are ignored until then.",
				c.o.RateLimit, c.o.RateWindow)}
		}
		return Reply{}
	}
	var r Reply
	switch cmd.Name {
	case CommandStatus:
		r.Text = c.status(ctx)
	case CommandRun:
		r = c.run(ctx, m, user, cmd)
	case CommandJob:
		r.Text = c.job(ctx, cmd.Arg)
	case CommandHelp:
		r.Text = c.Help()
	default:
		r.Text = fmt.Sprintf("Unknown command %q.\n\n%s", cmd.Arg, c.Help())
	}
	r.Text = c.Cut(r.Text)
	return r
}

// Received logs message_received for m, under command, and counts it in
// bot_frontend_messages_total. Handle calls it; a frontend calls it itself
// for the messages it answers on its own (SMS's STOP and START).
func (c *Chat) Received(ctx context.Context, m Message, command string) {
	c.d.Metrics.Message(c.d.Name, command)
	c.d.Logger.InfoContext(ctx, "message_received", "user", c.UserHash(m.User), "message_id", m.ID,
		"command", command, "bytes", len(m.Text))
}

// Answered logs the answer to m that the frontend sent (reply_sent) or
// failed to send (reply_failed, with err), and counts it.
func (c *Chat) Answered(ctx context.Context, m Message, r Reply, err error) {
	if r.JobID != "" {
		ctx = logging.With(ctx, logging.KeyJobID, r.JobID)
	}
	c.logSent(ctx, c.UserHash(m.User), "answer", err)
}

func (c *Chat) logSent(ctx context.Context, user, kind string, err error, attrs ...any) {
	c.d.Metrics.Reply(c.d.Name, err)
	attrs = append([]any{"user", user, "kind", kind}, attrs...)
	if err != nil {
		c.d.Logger.WarnContext(ctx, "reply_failed", append(attrs, "error", err)...)
		return
	}
	c.d.Logger.InfoContext(ctx, "reply_sent", attrs...)
}

// UserHash returns what stands for a user in logs and Redis: 16 hex
// digits of an HMAC-SHA256 keyed by the platform's secret.
func (c *Chat) UserHash(id string) string {
	mac := hmac.New(sha256.New, c.p.HashKey)
	mac.Write([]byte(id))
	return hex.EncodeToString(mac.Sum(nil)[:8])
}

// seenTTL is how long a handled update's id is remembered: longer than
// any platform redelivers (Telegram keeps updates 24 hours).
const seenTTL = 25 * time.Hour

// Seen reports whether the platform's update id was handled before, and
// marks it handled. Platforms redeliver what they think went unanswered.
func (c *Chat) Seen(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	fresh, err := c.d.Redis.SetNX(ctx, c.seenKey(id), 1, seenTTL).Result()
	if err != nil {
		return false, fmt.Errorf("bot: marking update %s: %w", id, err)
	}
	return !fresh, nil
}

// Unsee forgets that id was handled, so that its redelivery is: for an
// update the frontend failed before anything happened.
func (c *Chat) Unsee(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	_ = c.d.Redis.Del(ctx, c.seenKey(id)).Err()
}

func (c *Chat) seenKey(id string) string { return "bot:seen:" + c.d.Name + ":" + id }

// redisTimeout bounds each of the chat's Redis calls.
const redisTimeout = 3 * time.Second

// allow counts a message of user against the rate limit, in a window that
// starts with the user's first message. tell is true for the first
// message refused. When Redis does not answer, the message is allowed:
// the command will report that Redis is down.
func (c *Chat) allow(ctx context.Context, user string) (ok, tell bool) {
	if c.o.RateLimit < 0 {
		return true, false
	}
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	key := "bot:rate:" + c.d.Name + ":" + user
	pipe := c.d.Redis.TxPipeline()
	pipe.SetNX(ctx, key, 0, c.o.RateWindow)
	n := pipe.Incr(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		c.d.Logger.WarnContext(ctx, "rate limit not checked", "error", err)
		return true, false
	}
	if n.Val() <= int64(c.o.RateLimit) {
		return true, false
	}
	c.d.Metrics.RateLimited(c.d.Name)
	c.d.Logger.WarnContext(ctx, "rate_limited", "user", user, "limit", c.o.RateLimit, "window", c.o.RateWindow.String())
	return false, n.Val() == int64(c.o.RateLimit)+1
}

// Cut shortens text to the platform's MaxText, marking the cut.
func (c *Chat) Cut(text string) string { return cut(text, c.p.MaxText) }

func cut(text string, max int) string {
	units := 0
	for _, r := range text {
		units += utf16.RuneLen(r)
	}
	if max <= 0 || units <= max {
		return text
	}
	units = 0
	for i, r := range text {
		if units+utf16.RuneLen(r) > max-1 { // room for the ellipsis
			return text[:i] + "…"
		}
		units += utf16.RuneLen(r)
	}
	return text
}

// result is the reply a finished job owes its chat.
func (c *Chat) result(id string, info jobs.Info, found bool) string {
	if !found {
		return c.Cut(fmt.Sprintf("Job %s: its record expired before it finished; the result is lost.", id))
	}
	return c.Cut(describe(info))
}

// describe says what a job's record says, in a sentence or two.
func describe(info jobs.Info) string {
	switch info.Status {
	case jobs.StatusQueued:
		return fmt.Sprintf("Job %s is queued.", info.ID)
	case jobs.StatusRunning:
		return fmt.Sprintf("Job %s is running on %s (attempt %d of %d).", info.ID, info.Worker, info.Attempts, info.MaxAttempts)
	case jobs.StatusRetrying:
		return fmt.Sprintf("Job %s failed attempt %d of %d and will be retried: %s", info.ID, info.Attempts, info.MaxAttempts, info.Error)
	case jobs.StatusSucceeded:
		return fmt.Sprintf("Job %s succeeded: %s", info.ID, compact(info.Result))
	case jobs.StatusFailed:
		return fmt.Sprintf("Job %s failed after %d attempts: %s", info.ID, info.Attempts, info.Error)
	}
	return fmt.Sprintf("Job %s is %s.", info.ID, info.Status)
}

func compact(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(no result)"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
