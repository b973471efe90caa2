package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/version"
)

// Interaction is the part of an interaction the frontend reads.
type Interaction struct {
	ID            string       `json:"id"`
	ApplicationID string       `json:"application_id"`
	Type          int          `json:"type"`
	Token         string       `json:"token"`
	Data          *CommandData `json:"data,omitempty"`
	// Member is set in a guild, User in a direct message.
	Member *struct {
		User User `json:"user"`
	} `json:"member,omitempty"`
	User *User `json:"user,omitempty"`
}

// The interaction types the frontend answers, and its response types.
const (
	TypePing                 = 1
	TypeApplicationCommand   = 2
	ResponsePong             = 1
	ResponseDeferredWithText = 5 // DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
)

// CommandData is a slash command's name and options.
type CommandData struct {
	Name    string   `json:"name"`
	Options []Option `json:"options,omitempty"`
}

// Option is one option given to a slash command.
type Option struct {
	Name  string          `json:"name"`
	Type  int             `json:"type"`
	Value json.RawMessage `json:"value"`
}

// User is who sent an interaction.
type User struct {
	ID string `json:"id"`
}

// APIError is Discord's answer to a call that failed. It wraps
// bot.ErrUndeliverable for the 4xx answers other than 429 (an expired
// interaction token answers 401 or 404): trying again cannot help.
type APIError struct {
	Status     int     // the HTTP status
	Code       int     // Discord's JSON error code, 10015 for an unknown webhook
	Message    string  // Discord's words
	RetryAfter float64 // seconds, for 429
}

func (e *APIError) Error() string {
	return fmt.Sprintf("discord: HTTP %d: %s (code %d)", e.Status, e.Message, e.Code)
}

// Unwrap returns bot.ErrUndeliverable when retrying cannot help.
func (e *APIError) Unwrap() error { return bot.UndeliverableStatus(e.Status) }

// maxResponse bounds an API answer.
const maxResponse = 1 << 20

// Client calls Discord's HTTP API. It is safe for concurrent use. Its
// errors never hold an interaction token or the bot token.
type Client struct {
	base, app, botToken string
	hc                  *http.Client
}

// NewClient returns a client of the API at o.APIURL for o.ApplicationID.
func NewClient(o Options) *Client {
	o = o.withDefaults()
	return &Client{base: o.APIURL, app: o.ApplicationID, botToken: o.BotToken, hc: o.HTTPClient}
}

// do sends body as JSON with method to path and decodes a 2xx answer into
// result (when not nil).
func (c *Client) do(ctx context.Context, method, path string, auth bool, body, result any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("discord: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(data))
	if err != nil {
		return errors.New("discord: bad DISCORD_API_URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "DiscordBot (https://github.com/botfleet/botfleet, "+version.String()+")")
	if auth {
		req.Header.Set("Authorization", "Bot "+c.botToken)
	}
	resp, err := bot.SendPlatform(c.hc, req)
	if err != nil {
		return fmt.Errorf("discord: %s: %w", method, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var r struct {
			Message    string  `json:"message"`
			Code       int     `json:"code"`
			RetryAfter float64 `json:"retry_after"`
		}
		if dec.Decode(&r) == nil {
			e.Message, e.Code, e.RetryAfter = r.Message, r.Code, r.RetryAfter
		}
		return e
	}
	if result != nil {
		if err := dec.Decode(result); err != nil {
			return fmt.Errorf("discord: HTTP %d: %w", resp.StatusCode, err)
		}
	}
	return nil
}

// Followup posts content as a follow-up message of the interaction whose
// token is given: after a deferred response, the first one replaces the
// "thinking" message. Mentions in content ping nobody.
func (c *Client) Followup(ctx context.Context, interactionToken, content string) error {
	return c.do(ctx, http.MethodPost, "/webhooks/"+c.app+"/"+interactionToken, false, map[string]any{
		"content": content, "allowed_mentions": map[string]any{"parse": []string{}},
	}, nil)
}

// RegisterCommands replaces the application's slash commands with cmds:
// in one guild (where changes show at once) when guild is set, globally
// otherwise. It needs the bot token.
func (c *Client) RegisterCommands(ctx context.Context, guild string, cmds []ApplicationCommand) ([]ApplicationCommand, error) {
	if c.botToken == "" {
		return nil, errors.New("discord: registering commands needs the bot token (DISCORD_BOT_TOKEN)")
	}
	path := "/applications/" + c.app + "/commands"
	if guild != "" {
		path = "/applications/" + c.app + "/guilds/" + guild + "/commands"
	}
	var got []ApplicationCommand
	err := c.do(ctx, http.MethodPut, path, true, cmds, &got)
	return got, err
}
