package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/botfleet/botfleet/bot"
)

// Update is the part of a Bot API update the frontend reads.
type Update struct {
	UpdateID int64    `json:"update_id"`
	Message  *Message `json:"message,omitempty"`
}

// Message is the part of a Bot API message the frontend reads.
type Message struct {
	MessageID int64  `json:"message_id"`
	From      *User  `json:"from,omitempty"`
	Chat      Chat   `json:"chat"`
	Text      string `json:"text,omitempty"`
}

// User is a message's sender.
type User struct {
	ID    int64 `json:"id"`
	IsBot bool  `json:"is_bot"`
}

// Chat is where a message was sent.
type Chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// APIError is the Bot API's answer to a call that failed. It wraps
// bot.ErrUndeliverable for the 4xx answers other than 429 (the chat is
// gone, the bot was blocked, the token is wrong): trying again cannot
// help.
type APIError struct {
	Method      string
	Code        int    // error_code, an HTTP status
	Description string // description, Telegram's words
	RetryAfter  int    // parameters.retry_after, seconds, for 429
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram: %s: %d %s", e.Method, e.Code, e.Description)
}

// Unwrap returns bot.ErrUndeliverable when retrying cannot help.
func (e *APIError) Unwrap() error { return bot.UndeliverableStatus(e.Code) }

// maxResponse bounds an API answer: getUpdates returns at most 100
// updates.
const maxResponse = 8 << 20

// Client calls the Bot API. It is safe for concurrent use. Its errors
// never hold the token: the token is part of every method's URL, so a
// transport error's URL is dropped.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the Bot API at o.APIURL for o.Token.
func NewClient(o Options) *Client {
	o = o.withDefaults()
	return &Client{base: o.APIURL, token: o.Token, hc: o.HTTPClient}
}

// call posts params as JSON to method and decodes the result into result
// (when not nil).
func (c *Client) call(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("telegram: %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/bot"+c.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("telegram: %s: bad TELEGRAM_API_URL", method)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := bot.SendPlatform(c.hc, req)
	if err != nil {
		return fmt.Errorf("telegram: %s: %w", method, err)
	}
	defer resp.Body.Close()
	var r struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&r); err != nil {
		return fmt.Errorf("telegram: %s: HTTP %d without the Bot API's JSON", method, resp.StatusCode)
	}
	if !r.OK {
		code := r.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return &APIError{Method: method, Code: code, Description: r.Description, RetryAfter: r.Parameters.RetryAfter}
	}
	if result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("telegram: %s: result: %w", method, err)
		}
	}
	return nil
}

// SendMessage sends text, as plain text, to chat, as a reply to message
// replyTo when it is not 0 (and still exists).
func (c *Client) SendMessage(ctx context.Context, chat int64, text string, replyTo int64) error {
	params := map[string]any{"chat_id": chat, "text": text, "link_preview_options": map[string]bool{"is_disabled": true}}
	if replyTo != 0 {
		params["reply_parameters"] = map[string]any{"message_id": replyTo, "allow_sending_without_reply": true}
	}
	return c.call(ctx, "sendMessage", params, nil)
}

// GetUpdates long-polls for the messages after offset, for up to timeout;
// offset confirms every update before it.
func (c *Client) GetUpdates(ctx context.Context, offset int64, timeout time.Duration) ([]Update, error) {
	var updates []Update
	err := c.call(ctx, "getUpdates", map[string]any{
		"offset": offset, "timeout": int(timeout.Seconds()), "allowed_updates": []string{"message"},
	}, &updates)
	return updates, err
}

// SetWebhook tells Telegram to post updates to url with secret in the
// X-Telegram-Bot-Api-Secret-Token header; dropPending drops the updates
// it holds.
func (c *Client) SetWebhook(ctx context.Context, url, secret string, dropPending bool) error {
	return c.call(ctx, "setWebhook", map[string]any{
		"url": url, "secret_token": secret, "allowed_updates": []string{"message"}, "drop_pending_updates": dropPending,
	}, nil)
}

// DeleteWebhook stops the webhook, so that getUpdates works.
func (c *Client) DeleteWebhook(ctx context.Context, dropPending bool) error {
	return c.call(ctx, "deleteWebhook", map[string]any{"drop_pending_updates": dropPending}, nil)
}
