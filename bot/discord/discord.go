// Package discord is the bot's Discord frontend, discord_bot: users run
// the chat commands as slash commands (/status, /run, /job, /help) and get
// the answers, and later their jobs' results, in the same channel.
//
// Discord posts each interaction to the interactions endpoint, POST
// /discord/interactions, signed with the application's Ed25519 key; a
// request whose signature does not verify gets 401, as Discord requires
// (it checks that the endpoint refuses them). PING is answered with PONG.
// A slash command is answered at once with a deferred response, then with
// its answer as a follow-up through the interaction's webhook; the result
// of a job it started is another follow-up, within the 15 minutes an
// interaction token lives. Commands registers the slash commands.
package discord

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/config"
)

// Name is the frontend's service name.
const Name = "discord_bot"

// The frontend's route, headers and limits.
const (
	InteractionsPath = "/discord/interactions"
	SignatureHeader  = "X-Signature-Ed25519"
	TimestampHeader  = "X-Signature-Timestamp"
	// MaxText is the longest message content Discord takes.
	MaxText = 2000
	// TokenLifetime is how long an interaction token can post follow-ups.
	TokenLifetime = 15 * time.Minute
	// maxInteraction bounds a request's body.
	maxInteraction = 1 << 20
	// responseBudget is what the bot spends before it responds to an
	// interaction, of the 3 seconds Discord gives.
	responseBudget = 2 * time.Second
)

// DefaultAPIURL is Options.APIURL's default.
const DefaultAPIURL = "https://discord.com/api/v10"

// Options configure the frontend. The zero value of a field is its
// default; FromEnv fills them from the environment.
type Options struct {
	// PublicKey is the application's public key (DISCORD_PUBLIC_KEY, 64
	// hex digits), which every interaction is signed for. The frontend is
	// on when it is set.
	PublicKey ed25519.PublicKey
	// ApplicationID is the application's id (DISCORD_APPLICATION_ID),
	// whose interaction webhooks take the follow-ups. Required with
	// PublicKey.
	ApplicationID string
	// BotToken is the bot's token (DISCORD_BOT_TOKEN), needed only to
	// register the slash commands. When set, it also keys the hashes
	// that stand for users in logs (else the public key does).
	BotToken string
	// APIURL is the API's base URL (DISCORD_API_URL). Default
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

// Enabled reports whether the frontend is configured (a public key is
// set).
func (o Options) Enabled() bool { return len(o.PublicKey) != 0 }

var (
	snowflakePattern = regexp.MustCompile(`^[0-9]{15,21}$`)
	botTokenPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{20,200}$`)
)

// FromEnv reads DISCORD_PUBLIC_KEY, DISCORD_APPLICATION_ID,
// DISCORD_BOT_TOKEN and DISCORD_API_URL through getenv (os.Getenv when
// nil). Every bad variable is named in the error, the token masked.
func FromEnv(getenv func(string) string) (Options, error) {
	l := config.New(getenv)
	o := Options{
		ApplicationID: l.String("DISCORD_APPLICATION_ID", ""),
		BotToken:      l.Secret("DISCORD_BOT_TOKEN", botTokenPattern, "the bot's token from the Developer Portal (Bot, Reset Token)"),
		APIURL:        l.URL("DISCORD_API_URL", DefaultAPIURL),
	}
	if v := l.String("DISCORD_PUBLIC_KEY", ""); v != "" {
		key, err := hex.DecodeString(v)
		if err != nil || len(key) != ed25519.PublicKeySize {
			l.Bad("DISCORD_PUBLIC_KEY", v, "the application's public key, 64 hex digits (Developer Portal, General Information)")
		} else {
			o.PublicKey = key
		}
	}
	if o.ApplicationID != "" && !snowflakePattern.MatchString(o.ApplicationID) {
		l.Bad("DISCORD_APPLICATION_ID", o.ApplicationID, "the application's id, 15 to 21 digits")
	}
	l.Requires("DISCORD_APPLICATION_ID", "DISCORD_PUBLIC_KEY", "DISCORD_BOT_TOKEN")
	return o, l.Err()
}

// Frontend is the Discord frontend. It is safe for concurrent use.
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
	case len(o.PublicKey) != ed25519.PublicKeySize:
		return nil, errors.New("discord: Options.PublicKey: want an Ed25519 public key")
	case !snowflakePattern.MatchString(o.ApplicationID):
		return nil, fmt.Errorf("discord: Options.ApplicationID %q: want the application's id", o.ApplicationID)
	}
	key := []byte(o.BotToken)
	if len(key) == 0 {
		key = o.PublicKey
	}
	return &Frontend{o: o, d: d, api: NewClient(o),
		chat: bot.NewChat(d, bot.Platform{HashKey: key, MaxText: MaxText, ReplyWindow: TokenLifetime - time.Minute})}, nil
}

// Name returns "discord_bot".
func (*Frontend) Name() string { return Name }

// Mount registers the interactions endpoint. It is not behind the bot's
// bearer token, which Discord cannot send: the signature guards it.
func (f *Frontend) Mount(handle func(string, http.Handler, bool)) {
	handle("POST "+InteractionsPath, f.d.Metrics.CountRequests(Name, http.HandlerFunc(f.interactions)), false)
}

// Run sends the results of the jobs users started until ctx ends.
func (f *Frontend) Run(ctx context.Context) error {
	return f.chat.RunReplies(ctx, f.api.Followup)
}

// Verify reports whether sig (hex) is publicKey's Ed25519 signature of
// timestamp followed by body, as Discord signs an interaction.
func Verify(publicKey ed25519.PublicKey, sig, timestamp string, body []byte) bool {
	s, err := hex.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || timestamp == "" || len(publicKey) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(publicKey, append([]byte(timestamp), body...), s)
}

func (f *Frontend) interactions(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteraction))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if !Verify(f.o.PublicKey, r.Header.Get(SignatureHeader), r.Header.Get(TimestampHeader), body) {
		f.d.Logger.WarnContext(r.Context(), "interaction refused: bad signature", "remote", r.RemoteAddr)
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	var in Interaction
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "not an interaction", http.StatusBadRequest)
		return
	}
	switch {
	case in.Type == TypePing:
		respond(w, ResponsePong)
	case in.Type == TypeApplicationCommand && in.Data != nil:
		f.command(w, r, in)
	default:
		http.Error(w, fmt.Sprintf("interaction type %d is not handled", in.Type), http.StatusBadRequest)
	}
}

// command runs a slash command, answers Discord with a deferred response
// and posts the answer as a follow-up.
func (f *Frontend) command(w http.ResponseWriter, r *http.Request, in Interaction) {
	// Discord waits 3 seconds for the response: a slow Redis makes the
	// answer "try again", not a failed interaction.
	ctx, cancel := context.WithTimeout(r.Context(), responseBudget)
	defer cancel()
	seen, err := f.chat.Seen(ctx, in.ID)
	switch {
	case err != nil:
		f.d.Logger.ErrorContext(ctx, "interaction not handled", "interaction_id", in.ID, "error", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	case seen: // Discord sends an interaction once: this is a replay
		http.Error(w, "interaction already handled", http.StatusConflict)
		return
	}
	cmd, text := command(in.Data)
	msg := bot.Message{User: userID(in), Text: text, Route: in.Token, ID: in.ID}
	reply := f.chat.Do(ctx, msg, cmd)
	if reply.Text == "" {
		reply.Text = "Slow down: your commands are ignored for a while."
	}
	respond(w, ResponseDeferredWithText)
	// The deferred response must reach Discord before the follow-up.
	_ = http.NewResponseController(w).Flush()
	// The answer's own goroutine is bounded by SendTimeout, like a
	// request's: Discord expects the response before the follow-up.
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.chat.Options().SendTimeout)
		defer cancel()
		f.chat.Answered(ctx, msg, reply, f.api.Followup(ctx, in.Token, reply.Text))
	}()
}

func userID(in Interaction) string {
	switch {
	case in.Member != nil:
		return in.Member.User.ID
	case in.User != nil:
		return in.User.ID
	}
	return ""
}

// respond writes an interaction response of type typ, whole (with its
// length), so that a flush delivers it.
func respond(w http.ResponseWriter, typ int) {
	body := []byte(`{"type":` + strconv.Itoa(typ) + `}`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
