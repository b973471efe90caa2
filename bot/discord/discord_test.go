package discord_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/bot/discord"
	"github.com/botfleet/botfleet/internal/chattest"
)

const (
	app       = "1180000000000000000"
	userID    = "80351110224678912"
	itoken    = "aW50ZXJhY3Rpb246MTE4MDAwMDAwMDAwMDAwMDAwMTp0ZXN0"
	followups = "/webhooks/" + app + "/" + itoken
)

// keys is a key pair generated for the tests, as the Developer Portal
// generates an application's.
type keys struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newKeys(t *testing.T) keys {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys{pub, priv}
}

// sign signs an interaction as Discord does: Ed25519 over the timestamp
// header followed by the raw body, hex-encoded.
func (k keys) sign(timestamp, body string) string {
	return hex.EncodeToString(ed25519.Sign(k.priv, []byte(timestamp+body)))
}

// fakeDiscord stands in for Discord's API: follow-ups answer 200 with the
// message; an unknown webhook answers 404 with code 10015; a command
// overwrite answers the commands with ids.
func fakeDiscord(t *testing.T) *chattest.API {
	t.Helper()
	api := chattest.NewAPI(t)
	var n atomic.Int64
	api.Handle("POST /webhooks/{app}/{token}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("app") != app || r.PathValue("token") != itoken {
			answer(w, http.StatusNotFound, `{"message": "Unknown Webhook", "code": 10015}`)
			return
		}
		var p struct {
			Content string `json:"content"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		answer(w, http.StatusOK, fmt.Sprintf(`{"id":"%d","type":19,"content":%q,"channel_id":"1180000000000000077"}`, 1190000000000000000+n.Add(1), p.Content))
	})
	return api
}

func answer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// interaction is a slash command as Discord posts it from a guild.
func interaction(id int, name string, options ...string) string {
	var opts []string
	for i := 0; i+1 < len(options); i += 2 {
		opts = append(opts, fmt.Sprintf(`{"name":%q,"type":3,"value":%q}`, options[i], options[i+1]))
	}
	return fmt.Sprintf(`{"id":"%d","application_id":%q,"type":2,"data":{"id":"1180000000000000100","name":%q,"type":1,"options":[%s]},`+
		`"guild_id":"1180000000000000050","channel_id":"1180000000000000077","member":{"user":{"id":%q,"username":"ada"},"roles":[]},`+
		`"token":%q,"version":1,"locale":"en-US"}`, 1180000000000000000+id, app, name, strings.Join(opts, ","), userID, itoken)
}

// post sends body to url signed by k (or with the given headers when
// sig is not "sign") and returns the status and body.
func post(t *testing.T, url string, k keys, body string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set(discord.TimestampHeader, ts)
	req.Header.Set(discord.SignatureHeader, k.sign(ts, body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func newFrontend(t *testing.T, e *chattest.Env, api *chattest.API, k keys) *discord.Frontend {
	t.Helper()
	f, err := discord.New(e.Deps(discord.Name, bot.ChatOptions{PollInterval: 10 * time.Millisecond}),
		discord.Options{PublicKey: k.pub, ApplicationID: app, APIURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// contents returns the follow-ups' contents, checking that none pings.
func contents(t *testing.T, calls []chattest.Call) []string {
	t.Helper()
	var out []string
	for _, c := range calls {
		var p struct {
			Content         string `json:"content"`
			AllowedMentions struct {
				Parse []string `json:"parse"`
			} `json:"allowed_mentions"`
		}
		if err := json.Unmarshal(c.Body, &p); err != nil || p.AllowedMentions.Parse == nil || len(p.AllowedMentions.Parse) != 0 {
			t.Errorf("follow-up %s: want content and allowed_mentions {parse: []}", c.Body)
		}
		out = append(out, p.Content)
	}
	return out
}

func TestFromEnv(t *testing.T) {
	k := newKeys(t)
	hexKey := hex.EncodeToString(k.pub)
	tests := []struct {
		name string
		env  map[string]string
		errs []string
		on   bool
	}{
		{"nothing set: off", nil, nil, false},
		{"endpoint", map[string]string{"DISCORD_PUBLIC_KEY": hexKey, "DISCORD_APPLICATION_ID": app}, nil, true},
		{"registration only", map[string]string{"DISCORD_BOT_TOKEN": "MTE4.bot-token_0123456789", "DISCORD_APPLICATION_ID": app}, nil, false},
		{"key without the application", map[string]string{"DISCORD_PUBLIC_KEY": hexKey},
			[]string{`DISCORD_APPLICATION_ID="": want a value, since DISCORD_PUBLIC_KEY is set`}, true},
		{"bad key and id", map[string]string{"DISCORD_PUBLIC_KEY": "abc", "DISCORD_APPLICATION_ID": "my-app"},
			[]string{`DISCORD_PUBLIC_KEY="abc": want the application's public key, 64 hex digits`, `DISCORD_APPLICATION_ID="my-app"`}, false},
		{"bad token, masked", map[string]string{"DISCORD_BOT_TOKEN": "short secret", "DISCORD_APPLICATION_ID": app},
			[]string{`DISCORD_BOT_TOKEN="[REDACTED]"`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := discord.FromEnv(func(k string) string { return tt.env[k] })
			if o.Enabled() != tt.on {
				t.Errorf("Enabled() = %v, want %v", o.Enabled(), tt.on)
			}
			if (err != nil) != (len(tt.errs) > 0) {
				t.Fatalf("error %v, want one saying %q", err, tt.errs)
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if err != nil && strings.Contains(err.Error(), "short secret") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	k, other := newKeys(t), newKeys(t)
	const ts, body = "1700000000", `{"type":1}`
	sig := k.sign(ts, body)
	tests := []struct {
		name, sig, ts, body string
		key                 ed25519.PublicKey
		want                bool
	}{
		{"signed", sig, ts, body, k.pub, true},
		{"another key", sig, ts, body, other.pub, false},
		{"body changed", sig, ts, `{"type":2}`, k.pub, false},
		{"timestamp changed", sig, "1700000001", body, k.pub, false},
		{"no timestamp", k.sign("", body), "", body, k.pub, false},
		{"not hex", "zz" + sig[2:], ts, body, k.pub, false},
		{"short", sig[:64], ts, body, k.pub, false},
		{"missing", "", ts, body, k.pub, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := discord.Verify(tt.key, tt.sig, tt.ts, []byte(tt.body)); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInteractionsRefuseBadSignatures(t *testing.T) {
	e := chattest.New(t)
	api := fakeDiscord(t)
	k := newKeys(t)
	url := chattest.Serve(t, newFrontend(t, e, api, k)) + discord.InteractionsPath
	body := interaction(1, "run", "type", "echo")
	tests := []struct {
		name    string
		by      keys
		headers []string
	}{
		{"no signature", k, []string{discord.SignatureHeader, ""}},
		{"no timestamp", k, []string{discord.TimestampHeader, ""}},
		{"another key", newKeys(t), nil},
		{"signature of another timestamp", k, []string{discord.TimestampHeader, "1"}},
		{"garbage", k, []string{discord.SignatureHeader, "not-hex"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _ := post(t, url, tt.by, body, tt.headers...); code != http.StatusUnauthorized {
				t.Errorf("got %d, want 401", code)
			}
		})
	}
	if n := e.RDB.XLen(context.Background(), "jobs:default").Val(); n != 0 {
		t.Errorf("%d jobs queued by refused requests", n)
	}
	if n := len(api.Calls("")); n != 0 {
		t.Errorf("Discord's API was called %d times", n)
	}
	if got := e.Counter(t, "bot_frontend_requests_total", "frontend", discord.Name, "code", "401"); got != float64(len(tests)) {
		t.Errorf("bot_frontend_requests_total{code=401} = %v, want %d", got, len(tests))
	}
}

func TestPingAndCommands(t *testing.T) {
	e := chattest.New(t)
	api := fakeDiscord(t)
	k := newKeys(t)
	url := chattest.Serve(t, newFrontend(t, e, api, k)) + discord.InteractionsPath

	if code, body := post(t, url, k, `{"id":"1","application_id":"`+app+`","type":1,"token":"x","version":1}`); code != 200 || body != `{"type":1}` {
		t.Errorf("PING: %d %s, want 200 {\"type\":1}", code, body)
	}
	if code, _ := post(t, url, k, `{"id":"2","type":3,"token":"x"}`); code != http.StatusBadRequest {
		t.Errorf("a component interaction: %d, want 400", code)
	}
	status := interaction(2, "status")
	if code, body := post(t, url, k, status); code != 200 || body != `{"type":5}` {
		t.Fatalf("/status: %d %s, want the deferred response", code, body)
	}
	if got := contents(t, api.WaitCalls(t, followups, 1)); !strings.HasPrefix(got[0], "Workers: 0 alive") {
		t.Errorf("follow-up %q, want the fleet's status", got[0])
	}
	if code, _ := post(t, url, k, status); code != http.StatusConflict {
		t.Errorf("a replayed interaction: %d, want 409", code)
	}
	if code, _ := post(t, url, k, interaction(3, "job", "id", "echo.nosuch")); code != 200 {
		t.Errorf("/job: %d", code)
	}
	if got := contents(t, api.WaitCalls(t, followups, 2)); len(got) != 2 || got[1] != `No job "echo.nosuch" (unknown, or its record expired).` {
		t.Errorf("follow-ups %q", got)
	}
}

func TestEndToEnd(t *testing.T) {
	e := chattest.New(t)
	api := fakeDiscord(t)
	k := newKeys(t)
	chattest.StartWorker(t, e.RDB, "worker-discord")
	url, reg := e.StartBot(t, bot.ChatOptions{PollInterval: 20 * time.Millisecond}, func(b *bot.Bot) error {
		f, err := discord.New(b.Deps(discord.Name), discord.Options{PublicKey: k.pub, ApplicationID: app, APIURL: api.URL})
		if err != nil {
			return err
		}
		return b.Add(f)
	})
	code, body := post(t, url+discord.InteractionsPath, k, interaction(9, "run", "type", "echo", "payload", `{"message": "hello fleet"}`))
	if code != 200 || body != `{"type":5}` {
		t.Fatalf("/run: %d %s, want the deferred response", code, body)
	}
	got := contents(t, api.WaitCalls(t, followups, 2))
	id := strings.TrimSuffix(strings.Fields(got[0])[2], ".")
	want := fmt.Sprintf(`Job %s succeeded: {"message":"hello fleet"}`, id)
	if !strings.HasPrefix(id, "echo.") || got[1] != want {
		t.Errorf("follow-ups %q, want the job queued then %q", got, want)
	}
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"bot_frontend_requests_total", []string{"frontend", discord.Name, "code", "200"}},
		{"bot_jobs_submitted_total", []string{"frontend", discord.Name, "type", "echo"}},
		{"bot_frontend_jobs_total", []string{"frontend", discord.Name, "status", "succeeded"}},
	} {
		if got := chattest.Counter(t, reg, c.name, c.labels...); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, got)
		}
	}
	chattest.WaitFor(t, "both reply_sent records", func() bool { return len(e.Records("reply_sent")) == 2 })
	for _, r := range append(e.Records("message_received"), e.Records("reply_sent")...) {
		if r.Attrs["service"] != discord.Name {
			t.Errorf("%s record %v, want service %s", r.Message, r.Attrs, discord.Name)
		}
	}
	e.NoneContains(t, userID, itoken)
	var calls bytes.Buffer
	for _, c := range api.Calls("") {
		fmt.Fprintf(&calls, "%s %s\n", c.Method, c.Path)
	}
	if calls.String() != strings.Repeat("POST "+followups+"\n", 2) {
		t.Errorf("calls to Discord:\n%s", calls.String())
	}
}
