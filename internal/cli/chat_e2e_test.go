package cli_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot/discord"
	"github.com/botfleet/botfleet/bot/sms"
	"github.com/botfleet/botfleet/bot/telegram"
	"github.com/botfleet/botfleet/internal/chattest"
	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// TestBotChatFrontends runs `botfleet bot` with the three chat frontends'
// variables set, their platforms' APIs replaced by one local recorder, and
// a `botfleet worker`: a signed Telegram update, a signed Discord
// interaction and a signed Twilio SMS each run a job on the worker and get
// the result in their platform's API format; unsigned ones are refused
// and queue nothing.
func TestBotChatFrontends(t *testing.T) {
	const (
		tgToken, tgSecret = "123456:AAtest-Token_x", "hook-Secret_1"
		app, itoken       = "1180000000000000000", "aW50ZXJhY3Rpb24tdG9rZW4"
		sid, authToken    = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"
		ourNumber, caller = "+16505558225", "+16505551199"
	)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	api := chattest.NewAPI(t)
	api.Handle("POST /bot"+tgToken+"/sendMessage", okJSON(`{"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"}}}`))
	api.Handle("POST /webhooks/"+app+"/"+itoken, okJSON(`{"id":"1190000000000000001","content":""}`))
	api.Handle("POST /2010-04-01/Accounts/"+sid+"/Messages.json", okJSON(`{"sid":"SM0","status":"queued"}`))

	srv := redistest.Start(t)
	logDir := t.TempDir()
	port := testbin.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testbin.Start(t, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(port),
		"LOG_TO_FILE=1", "LOG_DIR=" + logDir, "METRICS_AUTH_TOKEN=scrape-secret",
		"TELEGRAM_BOT_TOKEN=" + tgToken, "TELEGRAM_WEBHOOK_SECRET=" + tgSecret, "TELEGRAM_API_URL=" + api.URL,
		"DISCORD_PUBLIC_KEY=" + hex.EncodeToString(pub), "DISCORD_APPLICATION_ID=" + app, "DISCORD_API_URL=" + api.URL,
		"TWILIO_AUTH_TOKEN=" + authToken, "TWILIO_ACCOUNT_SID=" + sid, "TWILIO_FROM_NUMBER=" + ourNumber,
		"SMS_PUBLIC_URL=https://bot.example.com/sms/twilio", "TWILIO_API_URL=" + api.URL}, "bot")
	testbin.WaitFor(t, 15*time.Second, "the bot's /livez", func() bool {
		code, _ := get(t, base+"/livez", "")
		return code == http.StatusOK
	})
	startWorker(t, srv, "worker-chat", "HEARTBEAT_INTERVAL=0.5", "LOG_DIR="+t.TempDir())

	send := func(path, body string, headers ...string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	update := `{"update_id":1,"message":{"message_id":10,"from":{"id":777000111,"is_bot":false,"first_name":"Ada"},` +
		`"chat":{"id":777000111,"type":"private"},"date":1700000000,"text":"/run echo {\"from\": \"telegram\"}"}}`
	interaction := `{"id":"1180000000000000001","application_id":"` + app + `","type":2,"token":"` + itoken + `",` +
		`"data":{"name":"run","type":1,"options":[{"name":"type","type":3,"value":"echo"},{"name":"payload","type":3,"value":"{\"from\": \"discord\"}"}]},` +
		`"member":{"user":{"id":"80351110224678912"}},"version":1}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	smsForm := "Body=" + url.QueryEscape(`run echo {"from": "sms"}`) + "&To=" + url.QueryEscape(ourNumber) +
		"&MessageSid=SM1&AccountSid=" + sid + "&From=" + url.QueryEscape(caller)
	form, _ := url.ParseQuery(smsForm)
	formType := []string{"Content-Type", "application/x-www-form-urlencoded"}

	refused := []struct {
		name string
		code int
		got  int
	}{
		{"Telegram without the secret", 401, send(telegram.WebhookPath, update)},
		{"Discord unsigned", 401, send(discord.InteractionsPath, interaction, discord.TimestampHeader, ts)},
		{"SMS unsigned", 403, send(sms.WebhookPath, smsForm, formType...)},
		{"SMS signed for another URL", 403, send(sms.WebhookPath, smsForm, append(formType,
			sms.SignatureHeader, sms.Signature(authToken, base+sms.WebhookPath, form))...)},
	}
	for _, r := range refused {
		if r.got != r.code {
			t.Errorf("%s: %d, want %d", r.name, r.got, r.code)
		}
	}
	if n := srv.Client(t).XLen(context.Background(), "jobs:default").Val(); n != 0 {
		t.Fatalf("refused requests queued %d jobs", n)
	}

	if code := send(telegram.WebhookPath, update, telegram.SecretHeader, tgSecret); code != 200 {
		t.Errorf("signed Telegram update: %d", code)
	}
	if code := send(discord.InteractionsPath, interaction, discord.TimestampHeader, ts,
		discord.SignatureHeader, hex.EncodeToString(ed25519.Sign(priv, []byte(ts+interaction)))); code != 200 {
		t.Errorf("signed Discord interaction: %d", code)
	}
	if code := send(sms.WebhookPath, smsForm, append(formType,
		sms.SignatureHeader, sms.Signature(authToken, "https://bot.example.com/sms/twilio", form))...); code != 200 {
		t.Errorf("signed SMS: %d", code)
	}

	results := []struct {
		platform, path, field string
		calls                 int
	}{
		{"telegram", "/bot" + tgToken + "/sendMessage", "text", 2},
		{"discord", "/webhooks/" + app + "/" + itoken, "content", 2},
		{"sms", "/2010-04-01/Accounts/" + sid + "/Messages.json", "Body", 1}, // the answer was TwiML
	}
	for _, r := range results {
		calls := api.WaitCalls(t, r.path, r.calls)
		last := calls[len(calls)-1]
		var text, to string
		if r.platform == "sms" {
			f, _ := url.ParseQuery(string(last.Body))
			text, to = f.Get(r.field), f.Get("To")
		} else {
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(string(last.Body)))
			dec.UseNumber()
			_ = dec.Decode(&m)
			text, to = fmt.Sprint(m[r.field]), fmt.Sprint(m["chat_id"])
		}
		if want := fmt.Sprintf(`succeeded: {"from":%q}`, r.platform); !strings.HasPrefix(text, "Job echo.") || !strings.HasSuffix(text, want) {
			t.Errorf("%s result %q, want one ending %q", r.platform, text, want)
		}
		if (r.platform == "sms" && to != caller) || (r.platform == "telegram" && to != "777000111") {
			t.Errorf("%s result sent to %s", r.platform, to)
		}
	}

	testbin.WaitFor(t, 15*time.Second, "each frontend's reply_sent lines in logs/bot/bot.jsonl", func() bool {
		data, _ := os.ReadFile(filepath.Join(logDir, "bot", "bot.jsonl"))
		for _, service := range []string{telegram.Name, discord.Name, sms.Name} {
			if strings.Count(string(data), `"message":"reply_sent","service":"`+service+`"`) < 2 {
				return false
			}
		}
		return strings.Count(string(data), `"message":"message_received"`) == 3
	})
	_, metrics := get(t, base+"/metrics", "scrape-secret")
	for _, f := range []string{telegram.Name, discord.Name, sms.Name} {
		if v := metricValue(string(metrics), `bot_frontend_jobs_total{frontend="`+f+`",status="succeeded"}`); v != 1 {
			t.Errorf("bot_frontend_jobs_total for %s = %v, want 1", f, v)
		}
	}
}
