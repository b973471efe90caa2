package deploy

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot/discord"
	"github.com/botfleet/botfleet/bot/sms"
	"github.com/botfleet/botfleet/bot/telegram"
	"github.com/botfleet/botfleet/internal/chattest"
)

// The chat frontends in TestPrometheusE2E: the bot runs its Telegram,
// Discord and SMS frontends against one local stand-in of the three
// platforms' APIs, and a signed message from each runs a job, so that the
// dashboard's per-frontend panel has a series for every frontend and the
// bot's own log lines, put through config.alloy's pipeline, answer the
// design's LogQL example.

// The chat frontends' credentials in the end-to-end test.
const (
	e2eTelegramToken  = "123456:AAe2e-Token_x"
	e2eTelegramSecret = "e2e-Secret"
	e2eDiscordApp     = "1180000000000000000"
	e2eTwilioSID      = "AC0123456789abcdef0123456789abcdef"
	e2eTwilioToken    = "0123456789abcdef0123456789abcdef"
	e2eTwilioNumber   = "+16505558225"
	e2eSMSURL         = "https://bot.example.com/sms/twilio"
)

// e2eFrontends are the frontends the bot runs in the test.
var e2eFrontends = []string{"web_frontend", telegram.Name, discord.Name, sms.Name}

// chatPlatforms is the platforms' side of the test: their APIs, and the
// Discord application's signing key.
type chatPlatforms struct {
	api     *chattest.API
	discord ed25519.PrivateKey
	sent    int // messages sent from each platform so far
}

// chatEnv starts the platforms' stand-in and returns the bot's variables
// for the three frontends.
func (e *e2e) chatEnv() []string {
	t := e.t
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	api := chattest.NewAPI(t)
	answer := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}
	}
	api.Handle("POST /bot"+e2eTelegramToken+"/sendMessage", answer(200, `{"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"}}}`))
	api.Handle("POST /webhooks/"+e2eDiscordApp+"/{token}", answer(200, `{"id":"1190000000000000001","type":19}`))
	api.Handle("POST /2010-04-01/Accounts/"+e2eTwilioSID+"/Messages.json", answer(201, `{"sid":"SM0","status":"queued"}`))
	e.chat = &chatPlatforms{api: api, discord: priv}
	return []string{
		"TELEGRAM_BOT_TOKEN=" + e2eTelegramToken, "TELEGRAM_WEBHOOK_SECRET=" + e2eTelegramSecret, "TELEGRAM_API_URL=" + api.URL,
		"DISCORD_PUBLIC_KEY=" + hex.EncodeToString(pub), "DISCORD_APPLICATION_ID=" + e2eDiscordApp, "DISCORD_API_URL=" + api.URL,
		"TWILIO_AUTH_TOKEN=" + e2eTwilioToken, "TWILIO_ACCOUNT_SID=" + e2eTwilioSID, "TWILIO_FROM_NUMBER=" + e2eTwilioNumber,
		"SMS_PUBLIC_URL=" + e2eSMSURL, "TWILIO_API_URL=" + api.URL,
	}
}

// runChatJobs sends one signed message from each platform that runs an
// echo job, and waits until each platform's API got the job's result.
func (e *e2e) runChatJobs() {
	t := e.t
	t.Helper()
	c := e.chat
	c.sent++
	n := c.sent
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	update := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"from":{"id":777000111,"is_bot":false,"first_name":"Ada"},`+
		`"chat":{"id":777000111,"type":"private"},"date":%s,"text":"run echo {\"n\": %d}"}}`, n, n, ts, n)
	interaction := fmt.Sprintf(`{"id":"%d","application_id":%q,"type":2,"token":"e2e-token-%d","version":1,`+
		`"data":{"name":"run","type":1,"options":[{"name":"type","type":3,"value":"echo"}]},"member":{"user":{"id":"80351110224678912"}}}`,
		1180000000000000000+n, e2eDiscordApp, n)
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%032d", n)}, "AccountSid": {e2eTwilioSID}, "From": {"+16505551199"},
		"To": {e2eTwilioNumber}, "Body": {"run echo"}}
	requests := []struct {
		path, body string
		header     http.Header
	}{
		{telegram.WebhookPath, update, http.Header{telegram.SecretHeader: {e2eTelegramSecret}, "Content-Type": {"application/json"}}},
		{discord.InteractionsPath, interaction, http.Header{discord.TimestampHeader: {ts}, "Content-Type": {"application/json"},
			discord.SignatureHeader: {hex.EncodeToString(ed25519.Sign(c.discord, []byte(ts+interaction)))}}},
		{sms.WebhookPath, form.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
			sms.SignatureHeader: {sms.Signature(e2eTwilioToken, e2eSMSURL, form)}}},
	}
	for _, r := range requests {
		req, _ := http.NewRequest(http.MethodPost, e.botURL+r.path, strings.NewReader(r.body))
		req.Header = r.header
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", r.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d, want 200", r.path, resp.StatusCode)
		}
	}
	results := map[string]string{ // the API call that carries the result, and what it says
		"/bot" + e2eTelegramToken + "/sendMessage":                     `succeeded: {\"n\":` + strconv.Itoa(n) + `}`,
		"/webhooks/" + e2eDiscordApp + "/e2e-token-" + strconv.Itoa(n): "succeeded: {}",
		"/2010-04-01/Accounts/" + e2eTwilioSID + "/Messages.json":      "succeeded",
	}
	for path, says := range results {
		e.waitFor(t, 15*time.Second, "the job's result at "+path, func() (bool, string) {
			calls := c.api.Calls(path)
			return slices.ContainsFunc(calls, func(call chattest.Call) bool { return strings.Contains(string(call.Body), says) }),
				fmt.Sprintf("%d calls", len(calls))
		})
	}
}

// frontendPanel checks that each dashboard query broken down by frontend
// has a series for every frontend the bot runs.
func (e *e2e) frontendPanel(t *testing.T) {
	qs, _ := e.dashboardPromQL(t, substituteVars)
	qs = slices.DeleteFunc(qs, func(q namedQuery) bool { return !strings.Contains(q.expr, "frontend") })
	if len(qs) == 0 {
		t.Fatal("no dashboard query is broken down by frontend")
	}
	for _, q := range qs {
		e.waitFor(t, 20*time.Second, q.where+" to show every frontend", func() (bool, string) {
			samples, err := e.query(q.expr)
			var have []string
			for _, s := range samples {
				have = append(have, s.Metric["frontend"])
			}
			missing := slices.DeleteFunc(slices.Clone(e2eFrontends), func(f string) bool { return slices.Contains(have, f) })
			return len(missing) == 0, fmt.Sprintf("%s: no series for %v (have %v, %v)", q.expr, missing, have, err)
		})
	}
}

// chatLogQL puts the bot's output through config.alloy's loki.process, as
// Alloy would read it from the bot's container, and runs the design's
// LogQL example and its like for the other two frontends on the streams
// it makes.
func (e *e2e) chatLogQL(t *testing.T) {
	docker := loadAlloy(t, "config.alloy")
	var entries []*logEntry
	for _, line := range strings.Split(e.bot.Output(), "\n") {
		if line == "" {
			continue
		}
		entry := &logEntry{line: line, labels: dockerSourceLabels(t, docker, "bot", "botfleet-bot-1", "stdout")}
		runStages(t, docker.ComponentsNamed("loki.process")[0], entry)
		entries = append(entries, entry)
	}
	for _, q := range []string{
		`{service="telegram_bot"} |= "message_received"`, // docs/deploy.md, from the design
		`{service="discord_bot"} |= "message_received"`,
		`{service="sms_gateway"} |= "message_received"`,
		`{service="telegram_bot", level="INFO"} |= "reply_sent"`,
		`{service="discord_bot", level="INFO"} |= "reply_sent"`,
		`{service="sms_gateway", level="INFO"} |= "reply_sent"`,
	} {
		if n := logQLCount(t, q, entries); n == 0 {
			t.Errorf("%s finds none of the bot's %d lines", q, len(entries))
		}
	}
}

var lineFilter = regexp.MustCompile(`\|=\s*("(?:[^"\\]|\\.)*")`)

// logQLCount counts the entries that a log query of equality matchers and
// |= line filters selects; it fails the test on anything else.
func logQLCount(t *testing.T, query string, entries []*logEntry) int {
	t.Helper()
	sel := logSelector.FindStringSubmatchIndex(query)
	if sel == nil || sel[0] != 0 {
		t.Fatalf("%s: no stream selector first", query)
	}
	want := map[string]string{}
	for _, m := range logMatcher.FindAllStringSubmatch(query[sel[2]:sel[3]], -1) {
		if m[2] != "=" {
			t.Fatalf("%s: only = matchers are simulated", query)
		}
		want[m[1]] = m[3]
	}
	rest := query[sel[1]:]
	var filters []string
	for _, m := range lineFilter.FindAllStringSubmatch(rest, -1) {
		s, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		filters = append(filters, s)
	}
	if strings.TrimSpace(lineFilter.ReplaceAllString(rest, "")) != "" {
		t.Fatalf("%s: only |= line filters are simulated", query)
	}
	n := 0
	for _, entry := range entries {
		ok := true
		for k, v := range want {
			ok = ok && entry.labels[k] == v
		}
		for _, f := range filters {
			ok = ok && strings.Contains(entry.line, f)
		}
		if ok {
			n++
		}
	}
	return n
}
