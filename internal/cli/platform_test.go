package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/botfleet/botfleet/internal/chattest"
	"github.com/botfleet/botfleet/internal/cli"
)

// runCLI runs botfleet in-process with env as its whole environment and
// returns the exit code, stdout and stderr.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.RunEnv(context.Background(), args, &cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	return code, stdout.String(), stderr.String()
}

func okJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func TestTelegramCommands(t *testing.T) {
	const token = "123456:AAtest-Token_x"
	api := chattest.NewAPI(t)
	api.Handle("POST /bot"+token+"/setWebhook", okJSON(`{"ok":true,"result":true,"description":"Webhook was set"}`))
	api.Handle("POST /bot"+token+"/deleteWebhook", okJSON(`{"ok":true,"result":true,"description":"Webhook was deleted"}`))
	env := map[string]string{"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_WEBHOOK_SECRET": "hook-Secret_1", "TELEGRAM_API_URL": api.URL}

	code, out, errOut := runCLI(t, env, "telegram", "set-webhook", "-url", "https://bot.example.com/telegram/webhook", "-drop-pending")
	if code != 0 || !strings.Contains(out, "https://bot.example.com/telegram/webhook") {
		t.Fatalf("set-webhook: exit %d, %q %q", code, out, errOut)
	}
	var p map[string]any
	calls := api.Calls("/bot" + token + "/setWebhook")
	if len(calls) != 1 || json.Unmarshal(calls[0].Body, &p) != nil || p["url"] != "https://bot.example.com/telegram/webhook" ||
		p["secret_token"] != "hook-Secret_1" || p["drop_pending_updates"] != true {
		t.Errorf("setWebhook calls %+v", calls)
	}
	if code, out, _ := runCLI(t, env, "telegram", "delete-webhook"); code != 0 || len(api.Calls("/bot"+token+"/deleteWebhook")) != 1 ||
		!strings.Contains(out, "TELEGRAM_MODE=poll") {
		t.Errorf("delete-webhook: exit %d, %q", code, out)
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		says string
	}{
		{"no subcommand", env, []string{"telegram"}, 2, "Usage:"},
		{"no URL", env, []string{"telegram", "set-webhook"}, 2, "-url"},
		{"no token", map[string]string{"TELEGRAM_API_URL": api.URL}, []string{"telegram", "delete-webhook"}, 2, "TELEGRAM_BOT_TOKEN is unset"},
		{"no secret", map[string]string{"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_MODE": "poll", "TELEGRAM_API_URL": api.URL},
			[]string{"telegram", "set-webhook", "-url", "https://x.example/telegram/webhook"}, 2, "TELEGRAM_WEBHOOK_SECRET is unset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.says) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, errOut, tt.code, tt.says)
			}
		})
	}
	if n := len(api.Calls("")); n != 2 {
		t.Errorf("%d API calls, want the 2 of the good commands", n)
	}
}

func TestDiscordRegisterCommands(t *testing.T) {
	const app, token = "1180000000000000000", "MTE4.bot-token_0123456789"
	api := chattest.NewAPI(t)
	// Discord answers a bulk overwrite with the commands it now holds.
	echo := func(w http.ResponseWriter, r *http.Request) {
		var cmds []map[string]any
		_ = json.NewDecoder(r.Body).Decode(&cmds)
		for i, c := range cmds {
			c["id"], c["application_id"], c["version"] = fmt.Sprint(1190000000000000000+i), app, "1"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cmds)
	}
	api.Handle("PUT /applications/"+app+"/commands", echo)
	api.Handle("PUT /applications/"+app+"/guilds/{guild}/commands", echo)
	env := map[string]string{"DISCORD_APPLICATION_ID": app, "DISCORD_BOT_TOKEN": token, "DISCORD_API_URL": api.URL}

	code, out, errOut := runCLI(t, env, "discord", "register-commands")
	if code != 0 || !strings.Contains(out, "Registered /status, /run, /job, /help globally") {
		t.Fatalf("exit %d, %q %q", code, out, errOut)
	}
	calls := api.Calls("/applications/" + app + "/commands")
	if len(calls) != 1 || calls[0].Header.Get("Authorization") != "Bot "+token || !strings.HasPrefix(calls[0].Header.Get("User-Agent"), "DiscordBot (") {
		t.Fatalf("calls %+v", calls)
	}
	var cmds []struct {
		Name    string `json:"name"`
		Type    int    `json:"type"`
		Options []struct {
			Name     string `json:"name"`
			Required bool   `json:"required"`
			Choices  []struct{ Value string }
		} `json:"options"`
	}
	if err := json.Unmarshal(calls[0].Body, &cmds); err != nil || len(cmds) != 4 || cmds[1].Name != "run" || cmds[1].Type != 1 {
		t.Fatalf("body %s", calls[0].Body)
	}
	if typ := cmds[1].Options[0]; typ.Name != "type" || !typ.Required || len(typ.Choices) != 4 || typ.Choices[2].Value != "http.fetch" {
		t.Errorf("/run's type option %+v, want the built-in types as choices", typ)
	}

	if code, out, _ := runCLI(t, env, "discord", "register-commands", "-guild", "1180000000000000050", "-types", ""); code != 0 || !strings.Contains(out, "in guild 1180000000000000050") {
		t.Errorf("guild: exit %d, %q", code, out)
	}
	calls = api.Calls("/applications/" + app + "/guilds/1180000000000000050/commands")
	if len(calls) != 1 || strings.Contains(string(calls[0].Body), "choices") {
		t.Errorf("guild calls %+v, want one, without choices", calls)
	}
	if code, _, errOut := runCLI(t, map[string]string{"DISCORD_APPLICATION_ID": app, "DISCORD_API_URL": api.URL}, "discord", "register-commands"); code != 2 ||
		!strings.Contains(errOut, "DISCORD_BOT_TOKEN is unset") {
		t.Errorf("without a token: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, env, "discord"); code != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no subcommand: exit %d, %q", code, errOut)
	}
}

func TestSMSSetWebhook(t *testing.T) {
	const sid, token, number = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "+16505558225"
	const pn = "PN0123456789abcdef0123456789abcdef"
	api := chattest.NewAPI(t)
	base := "/2010-04-01/Accounts/" + sid + "/IncomingPhoneNumbers"
	api.Handle("GET "+base+".json", func(w http.ResponseWriter, r *http.Request) {
		list := `[]`
		if r.URL.Query().Get("PhoneNumber") == number {
			list = `[{"sid": "` + pn + `", "phone_number": "` + number + `", "sms_url": ""}]`
		}
		okJSON(`{"incoming_phone_numbers": `+list+`, "page": 0}`)(w, r)
	})
	api.Handle("POST "+base+"/"+pn+".json", okJSON(`{"sid": "`+pn+`", "sms_url": "https://bot.example.com/sms/twilio"}`))
	env := map[string]string{"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token, "TWILIO_FROM_NUMBER": number,
		"SMS_PUBLIC_URL": "https://bot.example.com/sms/twilio", "TWILIO_API_URL": api.URL}

	code, out, errOut := runCLI(t, env, "sms", "set-webhook")
	if code != 0 || !strings.Contains(out, pn) {
		t.Fatalf("exit %d, %q %q", code, out, errOut)
	}
	calls := api.Calls(base + "/" + pn + ".json")
	if len(calls) != 1 {
		t.Fatalf("calls %+v", api.Calls(""))
	}
	form, _ := url.ParseQuery(string(calls[0].Body))
	if u, p, _ := (&http.Request{Header: calls[0].Header}).BasicAuth(); form.Get("SmsUrl") != "https://bot.example.com/sms/twilio" ||
		form.Get("SmsMethod") != "POST" || u != sid || p != token {
		t.Errorf("update %v as %s", form, u)
	}
	env["TWILIO_FROM_NUMBER"] = "+16505550001"
	if code, _, errOut := runCLI(t, env, "sms", "set-webhook", "-url", "https://other.example.com/sms/twilio"); code != 1 ||
		!strings.Contains(errOut, "not a phone number of the account") {
		t.Errorf("another number: exit %d, %q", code, errOut)
	}
	delete(env, "SMS_PUBLIC_URL")
	if code, _, errOut := runCLI(t, env, "sms", "set-webhook"); code != 2 || !strings.Contains(errOut, "-url") {
		t.Errorf("no URL: exit %d, %q", code, errOut)
	}
}
