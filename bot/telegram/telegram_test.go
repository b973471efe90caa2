package telegram_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/bot/telegram"
	"github.com/botfleet/botfleet/internal/chattest"
)

const (
	token    = "123456:AAtest-Token_x"
	secret   = "hook-Secret_1"
	sendPath = "/bot" + token + "/sendMessage"
	user     = 777000111
	chat     = 777000111 // a private chat's id is its user's
)

// fakeTelegram stands in for the Bot API, answering as Telegram documents
// (https://core.telegram.org/bots/api#making-requests): HTTP 200 and
// {"ok": true, "result": ...}, or {"ok": false, "error_code", "description"}.
func fakeTelegram(t *testing.T) *chattest.API {
	t.Helper()
	api := chattest.NewAPI(t)
	prefix := "POST /bot" + token + "/"
	var mu sync.Mutex
	next := int64(100)
	api.Handle(prefix+"sendMessage", func(w http.ResponseWriter, r *http.Request) {
		var p sentMessage
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.ChatID == 0 || p.Text == "" {
			answer(w, http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
			return
		}
		mu.Lock()
		next++
		id := next
		mu.Unlock()
		answer(w, http.StatusOK, fmt.Sprintf(`{"ok":true,"result":{"message_id":%d,"date":1700000000,"chat":{"id":%d,"type":"private"},"text":%q}}`,
			id, p.ChatID, p.Text))
	})
	for _, m := range []string{"setWebhook", "deleteWebhook"} {
		api.Handle(prefix+m, func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusOK, `{"ok":true,"result":true,"description":"Webhook was set"}`)
		})
	}
	return api
}

func answer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// sentMessage is a sendMessage call's parameters.
type sentMessage struct {
	ChatID          int64  `json:"chat_id"`
	Text            string `json:"text"`
	ReplyParameters struct {
		MessageID int64 `json:"message_id"`
	} `json:"reply_parameters"`
}

func sent(t *testing.T, calls []chattest.Call) []sentMessage {
	t.Helper()
	out := make([]sentMessage, len(calls))
	for i, c := range calls {
		if err := json.Unmarshal(c.Body, &out[i]); err != nil {
			t.Fatalf("sendMessage body %s: %v", c.Body, err)
		}
	}
	return out
}

// update is an update as Telegram posts it for a private message.
func update(id int64, text string) string {
	return fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Ada","language_code":"en"},`+
		`"chat":{"id":%d,"first_name":"Ada","type":"private"},"date":1700000000,"text":%q}}`, id, id*10, user, chat, text)
}

func post(t *testing.T, url, secretToken, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secretToken != "" {
		req.Header.Set(telegram.SecretHeader, secretToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func newFrontend(t *testing.T, e *chattest.Env, api *chattest.API, o telegram.Options) *telegram.Frontend {
	t.Helper()
	o.Token, o.APIURL = token, api.URL
	f, err := telegram.New(e.Deps(telegram.Name, bot.ChatOptions{PollInterval: 10 * time.Millisecond}), o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want telegram.Options
		errs []string
	}{
		{"nothing set: off", nil, telegram.Options{Mode: "webhook", APIURL: telegram.DefaultAPIURL}, nil},
		{"webhook", map[string]string{"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_WEBHOOK_SECRET": secret, "TELEGRAM_API_URL": "http://127.0.0.1:8081/"},
			telegram.Options{Token: token, WebhookSecret: secret, Mode: "webhook", APIURL: "http://127.0.0.1:8081"}, nil},
		{"poll needs no secret", map[string]string{"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_MODE": "POLL"},
			telegram.Options{Token: token, Mode: "poll", APIURL: telegram.DefaultAPIURL}, nil},
		{"webhook without its secret", map[string]string{"TELEGRAM_BOT_TOKEN": token},
			telegram.Options{}, []string{"TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_MODE=poll"}},
		{"a secret without a token", map[string]string{"TELEGRAM_WEBHOOK_SECRET": secret},
			telegram.Options{}, []string{`TELEGRAM_BOT_TOKEN="": want a value, since TELEGRAM_WEBHOOK_SECRET is set`}},
		{"bad token, masked", map[string]string{"TELEGRAM_BOT_TOKEN": "not a token", "TELEGRAM_MODE": "poll"},
			telegram.Options{}, []string{`TELEGRAM_BOT_TOKEN="[REDACTED]": want the token @BotFather gave`}},
		{"bad secret", map[string]string{"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_WEBHOOK_SECRET": "has spaces"},
			telegram.Options{}, []string{`TELEGRAM_WEBHOOK_SECRET="[REDACTED]"`}},
		{"bad mode and URL", map[string]string{"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_WEBHOOK_SECRET": secret,
			"TELEGRAM_MODE": "push", "TELEGRAM_API_URL": "ftp://x"}, telegram.Options{},
			[]string{`TELEGRAM_MODE="push": want webhook or poll`, `TELEGRAM_API_URL="ftp://x": want an http:// or https:// URL`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := telegram.FromEnv(func(k string) string { return tt.env[k] })
			if len(tt.errs) == 0 {
				if err != nil || got != tt.want {
					t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v and no error, want one saying %q", got, tt.errs)
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "not a token") || strings.Contains(err.Error(), "has spaces") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestWebhookRefusesRequestsWithoutTheSecret(t *testing.T) {
	e := chattest.New(t)
	api := fakeTelegram(t)
	url := chattest.Serve(t, newFrontend(t, e, api, telegram.Options{WebhookSecret: secret})) + telegram.WebhookPath
	tests := []struct{ name, secret string }{
		{"missing", ""},
		{"wrong", "hook-Secret_2"},
		{"a prefix", "hook-Secret"},
		{"longer", secret + "x"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := post(t, url, tt.secret, update(int64(i+1), "run echo")); code != http.StatusUnauthorized {
				t.Errorf("got %d, want 401", code)
			}
		})
	}
	if n := e.RDB.XLen(context.Background(), "jobs:default").Val(); n != 0 {
		t.Errorf("%d jobs queued by refused requests", n)
	}
	if n := len(api.Calls("")); n != 0 {
		t.Errorf("the Bot API was called %d times", n)
	}
	if n := len(e.Records("message_received")); n != 0 {
		t.Errorf("%d refused requests logged as received", n)
	}
	if got := e.Counter(t, "bot_frontend_requests_total", "frontend", telegram.Name, "code", "401"); got != 4 {
		t.Errorf("bot_frontend_requests_total{code=401} = %v, want 4", got)
	}
}

func TestWebhookHandlesARedeliveredUpdateOnce(t *testing.T) {
	e := chattest.New(t)
	api := fakeTelegram(t)
	url := chattest.Serve(t, newFrontend(t, e, api, telegram.Options{WebhookSecret: secret})) + telegram.WebhookPath
	for range 3 {
		if code := post(t, url, secret, update(41, `/run echo {"message": "once"}`)); code != http.StatusOK {
			t.Fatalf("got %d, want 200", code)
		}
	}
	if n := e.RDB.XLen(context.Background(), "jobs:default").Val(); n != 1 {
		t.Errorf("%d jobs queued, want 1", n)
	}
	msgs := sent(t, api.Calls(sendPath))
	if len(msgs) != 1 || msgs[0].ChatID != chat || !strings.HasPrefix(msgs[0].Text, "Queued job echo.") || msgs[0].ReplyParameters.MessageID != 410 {
		t.Errorf("sendMessage calls %+v, want one answer to message 410", msgs)
	}
	if n := len(e.Records("message_received")); n != 1 {
		t.Errorf("%d message_received records, want 1", n)
	}
}

func TestWebhookAsksForRedeliveryWhileRedisIsDown(t *testing.T) {
	e := chattest.New(t)
	api := fakeTelegram(t)
	url := chattest.Serve(t, newFrontend(t, e, api, telegram.Options{WebhookSecret: secret})) + telegram.WebhookPath
	e.Redis.Stop(t)
	if code := post(t, url, secret, update(7, "status")); code != http.StatusServiceUnavailable {
		t.Errorf("with Redis down: %d, want 503 so that Telegram redelivers", code)
	}
	e.Redis.Restart(t)
	if code := post(t, url, secret, update(7, "status")); code != http.StatusOK {
		t.Errorf("redelivered: %d, want 200", code)
	}
	if msgs := sent(t, api.Calls(sendPath)); len(msgs) != 1 || !strings.HasPrefix(msgs[0].Text, "Workers: 0 alive") {
		t.Errorf("sendMessage calls %+v, want the status once", msgs)
	}
}

// pollingAPI adds getUpdates to a fake Bot API: it answers with the
// updates from offset on, the first two calls ignoring the offset as
// after a crash before the offset was confirmed, and otherwise waits for
// the call's timeout, as a long poll does.
func pollingAPI(t *testing.T, updates ...string) *chattest.API {
	api := fakeTelegram(t)
	var mu sync.Mutex
	calls := 0
	api.Handle("POST /bot"+token+"/getUpdates", func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Offset  int64 `json:"offset"`
			Timeout int   `json:"timeout"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		calls++
		redeliver := calls <= 2
		mu.Unlock()
		var out []string
		for _, u := range updates {
			var head struct {
				UpdateID int64 `json:"update_id"`
			}
			_ = json.Unmarshal([]byte(u), &head)
			if redeliver || head.UpdateID >= p.Offset {
				out = append(out, u)
			}
		}
		if len(out) == 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Duration(p.Timeout) * time.Second):
			}
		}
		answer(w, http.StatusOK, `{"ok":true,"result":[`+strings.Join(out, ",")+`]}`)
	})
	return api
}

func TestPolling(t *testing.T) {
	e := chattest.New(t)
	api := pollingAPI(t, update(500, "help"), update(501, "job echo.nosuch"))
	f := newFrontend(t, e, api, telegram.Options{Mode: telegram.ModePoll, PollTimeout: time.Second})
	chattest.Serve(t, f)
	calls := api.WaitCalls(t, "/bot"+token+"/getUpdates", 3)
	msgs := sent(t, api.Calls(sendPath))
	if len(msgs) != 2 || !strings.HasPrefix(msgs[0].Text, "Commands:") || !strings.HasPrefix(msgs[1].Text, `No job "echo.nosuch"`) {
		t.Errorf("sendMessage calls %+v, want each update answered once", msgs)
	}
	var last struct {
		Offset         int64    `json:"offset"`
		AllowedUpdates []string `json:"allowed_updates"`
	}
	_ = json.Unmarshal(calls[len(calls)-1].Body, &last)
	if last.Offset != 502 || len(last.AllowedUpdates) != 1 {
		t.Errorf("getUpdates asked %s, want offset 502, messages only", calls[len(calls)-1].Body)
	}
}

func TestEndToEnd(t *testing.T) {
	e := chattest.New(t)
	api := fakeTelegram(t)
	chattest.StartWorker(t, e.RDB, "worker-telegram")
	url, reg := e.StartBot(t, bot.ChatOptions{PollInterval: 20 * time.Millisecond}, func(b *bot.Bot) error {
		f, err := telegram.New(b.Deps(telegram.Name), telegram.Options{Token: token, WebhookSecret: secret, APIURL: api.URL})
		if err != nil {
			return err
		}
		return b.Add(f)
	})
	if code := post(t, url+telegram.WebhookPath, secret, update(9, `/run echo {"message": "hello fleet"}`)); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	msgs := sent(t, api.WaitCalls(t, sendPath, 2))
	id := strings.TrimSuffix(strings.Fields(msgs[0].Text)[2], ".")
	if msgs[0].ChatID != chat || !strings.HasPrefix(id, "echo.") {
		t.Fatalf("first answer %+v, want the queued job's id", msgs[0])
	}
	want := fmt.Sprintf(`Job %s succeeded: {"message":"hello fleet"}`, id)
	if msgs[1].ChatID != chat || msgs[1].Text != want || msgs[1].ReplyParameters.MessageID != 90 {
		t.Errorf("result %+v, want %q in reply to message 90", msgs[1], want)
	}
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"bot_frontend_requests_total", []string{"frontend", telegram.Name, "code", "200"}},
		{"bot_jobs_submitted_total", []string{"frontend", telegram.Name, "type", "echo"}},
		{"bot_frontend_messages_total", []string{"frontend", telegram.Name, "command", "run"}},
		{"bot_frontend_jobs_total", []string{"frontend", telegram.Name, "status", "succeeded"}},
	} {
		if got := chattest.Counter(t, reg, c.name, c.labels...); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, got)
		}
	}
	chattest.WaitFor(t, "the result's reply_sent record", func() bool { return len(e.Records("reply_sent")) == 2 })
	for _, r := range append(e.Records("message_received"), e.Records("reply_sent")...) {
		if r.Attrs["service"] != telegram.Name || r.Level.String() != "INFO" {
			t.Errorf("%s record %v, want service %s at INFO", r.Message, r.Attrs, telegram.Name)
		}
	}
	if r := e.Records("reply_sent")[1]; r.Attrs["job_id"] != id || r.Attrs["status"] != "succeeded" {
		t.Errorf("the result's reply_sent record %v", r.Attrs)
	}
	e.NoneContains(t, fmt.Sprint(user), token)
}
