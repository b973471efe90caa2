package bot_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/botfleet/botfleet/bot"
)

func TestUndeliverableStatus(t *testing.T) {
	for status, want := range map[int]bool{400: true, 403: true, 404: true, 429: false, 500: false, 502: false} {
		if got := errors.Is(bot.UndeliverableStatus(status), bot.ErrUndeliverable); got != want {
			t.Errorf("status %d: undeliverable %v, want %v", status, got, want)
		}
	}
}

// TestSendPlatformDropsTheURL: a transport error must not carry the
// request's URL, where a platform puts the bot's token.
func TestSendPlatformDropsTheURL(t *testing.T) {
	const token = "123456:AAE-secret-token"
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/bot"+token+"/getMe", nil)
	_, err := bot.SendPlatform(http.DefaultClient, req)
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error holds the token: %v", err)
	}
}
