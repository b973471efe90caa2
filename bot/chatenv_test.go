package bot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot"
)

func TestFromEnvChatOptions(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bot.ChatOptions
		err  string
	}{
		{"defaults", nil, bot.ChatOptions{RateLimit: 20, RateWindow: time.Minute, MaxPayload: 4096}, ""},
		{"set", map[string]string{"CHAT_RATE_LIMIT": "5", "CHAT_RATE_WINDOW": "1.5", "CHAT_MAX_PAYLOAD": "100"},
			bot.ChatOptions{RateLimit: 5, RateWindow: 1500 * time.Millisecond, MaxPayload: 100}, ""},
		{"no limit", map[string]string{"CHAT_RATE_LIMIT": "0"}, bot.ChatOptions{RateLimit: -1, RateWindow: time.Minute, MaxPayload: 4096}, ""},
		{"bad limit", map[string]string{"CHAT_RATE_LIMIT": "-3"}, bot.ChatOptions{}, `CHAT_RATE_LIMIT="-3": want a whole number from 0`},
		{"payload over the queue's cap", map[string]string{"CHAT_MAX_PAYLOAD": "2000000"}, bot.ChatOptions{}, `CHAT_MAX_PAYLOAD="2000000": want a whole number from 2 to 1048576`},
		{"bad window", map[string]string{"CHAT_RATE_WINDOW": "soon"}, bot.ChatOptions{}, `CHAT_RATE_WINDOW="soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := bot.FromEnv(func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || o.Chat != tt.want {
				t.Errorf("got %+v, %v; want %+v", o.Chat, err, tt.want)
			}
		})
	}
}
