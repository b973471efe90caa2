// Package sms is the bot's SMS frontend through Twilio, sms_gateway:
// users text the chat commands (status, run, job, help) to the account's
// number and get the answer at once, and their jobs' results later.
//
// Twilio posts each incoming message, form-encoded, to the webhook, POST
// /sms/twilio, signed in X-Twilio-Signature with the account's auth token
// over the URL Twilio called and the sorted parameters; a request whose
// signature does not verify gets 403. The answer is the webhook's TwiML
// response; a job's result is sent later through the Messages API. The
// keywords STOP (and its synonyms), START and HELP are honoured: a number
// that sent STOP gets no more messages until it sends START.
package sms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/config"
)

// Name is the frontend's service name.
const Name = "sms_gateway"

// The frontend's route, header and limits.
const (
	WebhookPath     = "/sms/twilio"
	SignatureHeader = "X-Twilio-Signature"
	// MaxText is the longest message body Twilio sends (it splits it
	// into segments).
	MaxText = 1600
	// maxForm bounds a webhook request's body.
	maxForm = 64 << 10
)

// DefaultAPIURL is Options.APIURL's default.
const DefaultAPIURL = "https://api.twilio.com"

// Options configure the frontend. The zero value of a field is its
// default; FromEnv fills them from the environment.
type Options struct {
	// AuthToken is the account's auth token (TWILIO_AUTH_TOKEN): it
	// signs the webhooks and authenticates the API calls. The frontend is
	// on when it is set.
	AuthToken string
	// AccountSID is the account's SID (TWILIO_ACCOUNT_SID), required.
	AccountSID string
	// From is the account's number the messages come to and go from, in
	// E.164 (TWILIO_FROM_NUMBER), required.
	From string
	// PublicURL is the webhook's URL as Twilio calls it (SMS_PUBLIC_URL),
	// such as https://bot.example.com/sms/twilio, for a bot behind a
	// proxy; the request's query string is added when it has none. Empty
	// means the URL the request reached the bot at.
	PublicURL string
	// APIURL is the REST API's base URL (TWILIO_API_URL). Default
	// DefaultAPIURL.
	APIURL string
	// HTTPClient calls the API; every call has its own deadline. Nil
	// means a client of the frontend's own.
	HTTPClient *http.Client
}

func (o Options) withDefaults() Options {
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	o.APIURL = strings.TrimSuffix(o.APIURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	return o
}

// Enabled reports whether the frontend is configured (an auth token is
// set).
func (o Options) Enabled() bool { return o.AuthToken != "" }

var (
	authTokenPattern = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	sidPattern       = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	e164Pattern      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// FromEnv reads TWILIO_AUTH_TOKEN, TWILIO_ACCOUNT_SID, TWILIO_FROM_NUMBER,
// SMS_PUBLIC_URL and TWILIO_API_URL through getenv (os.Getenv when nil).
// Every bad variable is named in the error, the token masked.
func FromEnv(getenv func(string) string) (Options, error) {
	l := config.New(getenv)
	o := Options{
		AuthToken:  l.Secret("TWILIO_AUTH_TOKEN", authTokenPattern, "the account's auth token, 32 hex digits (Twilio Console, Account Info)"),
		AccountSID: l.String("TWILIO_ACCOUNT_SID", ""),
		From:       l.String("TWILIO_FROM_NUMBER", ""),
		PublicURL:  l.URL("SMS_PUBLIC_URL", ""),
		APIURL:     l.URL("TWILIO_API_URL", DefaultAPIURL),
	}
	if o.AccountSID != "" && !sidPattern.MatchString(o.AccountSID) {
		l.Bad("TWILIO_ACCOUNT_SID", o.AccountSID, "the account's SID, AC and 32 hex digits")
	}
	if o.From != "" && !e164Pattern.MatchString(o.From) {
		l.Bad("TWILIO_FROM_NUMBER", o.From, "the account's phone number in E.164 form, such as +14155550100")
	}
	l.Requires("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER", "SMS_PUBLIC_URL")
	l.Requires("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
	l.Requires("TWILIO_FROM_NUMBER", "TWILIO_AUTH_TOKEN")
	return o, l.Err()
}

// Frontend is the SMS frontend. It is safe for concurrent use.
type Frontend struct {
	o    Options
	d    bot.Deps
	chat *bot.Chat
	api  *Client
}

// New returns the frontend for the bot d was made for (bot.Bot.Deps(Name)).
func New(d bot.Deps, o Options) (*Frontend, error) {
	o = o.withDefaults()
	switch {
	case o.AuthToken == "":
		return nil, errors.New("sms: Options.AuthToken is empty")
	case !sidPattern.MatchString(o.AccountSID):
		return nil, fmt.Errorf("sms: Options.AccountSID %q: want AC and 32 hex digits", o.AccountSID)
	case !e164Pattern.MatchString(o.From):
		return nil, fmt.Errorf("sms: Options.From %q: want a number in E.164 form", o.From)
	}
	return &Frontend{o: o, d: d, api: NewClient(o),
		chat: bot.NewChat(d, bot.Platform{HashKey: []byte(o.AuthToken), MaxText: MaxText})}, nil
}

// Name returns "sms_gateway".
func (*Frontend) Name() string { return Name }

// Mount registers the webhook. It is not behind the bot's bearer token,
// which Twilio cannot send: the signature guards it.
func (f *Frontend) Mount(handle func(string, http.Handler, bool)) {
	handle("POST "+WebhookPath, f.d.Metrics.CountRequests(Name, http.HandlerFunc(f.webhook)), false)
}

// Run sends the results of the jobs users started until ctx ends.
func (f *Frontend) Run(ctx context.Context) error {
	return f.chat.RunReplies(ctx, f.send)
}

// The keywords carriers and Twilio give a meaning, matched against the
// whole message.
var (
	stopWords  = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
	startWords = []string{"START", "YES", "UNSTOP"}
	helpWords  = []string{"HELP", "INFO"}
)

// The answers to STOP and START.
const (
	stoppedText = "You will get no more messages from this number. Reply START to get them again."
	startedText = "You will get messages from this number again. Reply HELP for the commands, STOP to stop them."
)

func (f *Frontend) webhook(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "want a form-encoded body", http.StatusBadRequest)
		return
	}
	if !ValidSignature(f.o.AuthToken, f.signedURL(r), r.PostForm, r.Header.Get(SignatureHeader)) {
		f.d.Logger.WarnContext(r.Context(), "webhook request refused: bad signature", "remote", r.RemoteAddr)
		http.Error(w, "invalid signature", http.StatusForbidden)
		return
	}
	from, sid := r.PostForm.Get("From"), r.PostForm.Get("MessageSid")
	if from == "" || sid == "" {
		http.Error(w, "From and MessageSid are required", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	seen, err := f.chat.Seen(ctx, sid)
	switch {
	case err != nil:
		f.d.Logger.ErrorContext(ctx, "message not handled", "message_id", sid, "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	case seen:
		twiml(w, "")
		return
	}
	msg := bot.Message{User: from, Text: r.PostForm.Get("Body"), Route: from, ID: sid}
	text := f.handle(ctx, msg)
	twiml(w, text)
	if text != "" {
		f.chat.Answered(ctx, msg, bot.Reply{Text: text}, nil)
	}
}

// handle answers one message: the keywords, then the chat language for a
// number that did not send STOP. "" means no answer.
func (f *Frontend) handle(ctx context.Context, m bot.Message) string {
	word := strings.ToUpper(strings.TrimSpace(m.Text))
	switch {
	case slices.Contains(stopWords, word):
		f.chat.Received(ctx, m, "stop")
		if err := f.setStopped(ctx, m.User, true); err != nil {
			f.d.Logger.ErrorContext(ctx, "STOP not recorded", "user", f.chat.UserHash(m.User), "error", err)
		}
		return stoppedText
	case slices.Contains(startWords, word):
		f.chat.Received(ctx, m, "start")
		if err := f.setStopped(ctx, m.User, false); err != nil {
			f.d.Logger.ErrorContext(ctx, "START not recorded", "user", f.chat.UserHash(m.User), "error", err)
		}
		return startedText
	}
	if stopped, err := f.stopped(ctx, m.User); err != nil || stopped {
		f.chat.Received(ctx, m, "ignored")
		return "" // a number that sent STOP gets nothing, and one that may have neither
	}
	if slices.Contains(helpWords, word) {
		m.Text = bot.CommandHelp
	}
	return f.chat.Handle(ctx, m).Text
}

// stoppedKey is the set of the numbers that sent STOP, as SHA-256
// digests: not keyed by the auth token, so that rotating it forgets no
// one's STOP.
const stoppedKey = "bot:sms:stopped"

func digest(number string) string {
	sum := sha256.Sum256([]byte(number))
	return hex.EncodeToString(sum[:])
}

// redisTimeout bounds the frontend's own Redis calls.
const redisTimeout = 3 * time.Second

func (f *Frontend) setStopped(ctx context.Context, number string, stopped bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	if stopped {
		return f.d.Redis.SAdd(ctx, stoppedKey, digest(number)).Err()
	}
	return f.d.Redis.SRem(ctx, stoppedKey, digest(number)).Err()
}

func (f *Frontend) stopped(ctx context.Context, number string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	return f.d.Redis.SIsMember(ctx, stoppedKey, digest(number)).Result()
}

// send delivers a job's result by the Messages API, unless the number sent
// STOP since it asked.
func (f *Frontend) send(ctx context.Context, to, text string) error {
	stopped, err := f.stopped(ctx, to)
	if err != nil {
		return err
	}
	if stopped {
		return fmt.Errorf("sms: the number sent STOP: %w", bot.ErrUndeliverable)
	}
	err = f.api.Send(ctx, to, text)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Code == CodeUnsubscribed {
		_ = f.setStopped(ctx, to, true) // Twilio knows of a STOP the webhook missed
	}
	return err
}

// signedURL is the URL Twilio signed: SMS_PUBLIC_URL behind a proxy, the
// request's own otherwise.
func (f *Frontend) signedURL(r *http.Request) string {
	if u := f.o.PublicURL; u != "" {
		if r.URL.RawQuery != "" && !strings.Contains(u, "?") {
			u += "?" + r.URL.RawQuery
		}
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// twiml answers Twilio with a TwiML response sending text, or nothing
// when text is "".
func twiml(w http.ResponseWriter, text string) {
	var b strings.Builder
	b.WriteString(xml.Header + "<Response>")
	if text != "" {
		b.WriteString("<Message>")
		_ = xml.EscapeText(&b, []byte(text))
		b.WriteString("</Message>")
	}
	b.WriteString("</Response>")
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}
