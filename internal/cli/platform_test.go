package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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
