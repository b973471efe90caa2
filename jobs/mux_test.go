package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// urlHandler is a Handler with its own Validate method.
type urlHandler struct{}

func (urlHandler) Handle(context.Context, *Job) (any, error) { return nil, nil }

func (urlHandler) Validate(payload json.RawMessage) error {
	var p struct {
		URL string `json:"url"`
	}
	if _, err := decodePayload(payload, &p); err != nil {
		return err
	}
	if p.URL == "" {
		return &PayloadError{Field: "url", Reason: "missing"}
	}
	return nil
}

var errPlain = errors.New("too big")

func TestMuxValidate(t *testing.T) {
	nop := func(context.Context, *Job) (any, error) { return nil, nil }
	mux := NewMux()
	mux.HandleFunc("free", nop)
	mux.Handle("method", urlHandler{})
	mux.HandleFunc("option", nop, WithValidate(func(p json.RawMessage) error {
		if len(p) > 10 {
			return &PayloadError{Reason: "over 10 bytes"}
		}
		return nil
	}))
	mux.Handle("replaced", urlHandler{}, WithValidate(func(json.RawMessage) error { return nil }))
	mux.HandleFunc("plain", nop, WithValidate(func(json.RawMessage) error { return errPlain }))

	tests := []struct {
		name      string
		typ       string
		payload   string
		wantField string
		wantErr   string // substring of the error; "" means accepted
	}{
		{name: "no validator: any JSON", typ: "free", payload: `[1,"two",{"3":null}]`},
		{name: "no validator: nothing", typ: "free", payload: ``},
		{name: "no validator: still one JSON value", typ: "free", payload: `{"type":"echo"}]`, wantErr: "data after the JSON value"},
		{name: "no validator: still UTF-8", typ: "free", payload: "\"\xff\"", wantErr: "invalid UTF-8 at byte 1"},
		{name: "no validator: still JSON", typ: "free", payload: `{'a':1}`, wantErr: "not JSON"},
		{name: "handler's method", typ: "method", payload: `{"url":"x"}`},
		{name: "handler's method refuses", typ: "method", payload: `{}`, wantField: "url", wantErr: "missing"},
		{name: "handler's method: unknown field", typ: "method", payload: `{"url":"x","uri":"y"}`, wantField: "uri", wantErr: "unknown field; want url"},
		{name: "WithValidate", typ: "option", payload: `{"a":1}`},
		{name: "WithValidate refuses", typ: "option", payload: `{"a":"long"}`, wantErr: "over 10 bytes"},
		{name: "checks before the validator", typ: "option", payload: `{}x`, wantErr: "data after"},
		{name: "WithValidate over the method", typ: "replaced", payload: `{}`},
		{name: "plain error made a PayloadError", typ: "plain", payload: `{}`, wantErr: "too big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPayloadErr(t, "Validate", mux.Validate(tt.typ, json.RawMessage(tt.payload)), tt.wantField, tt.wantErr)
		})
	}

	if err := mux.Validate("plain", nil); !errors.Is(err, errPlain) {
		t.Errorf("Validate(plain) = %v, want it to wrap the validator's error", err)
	}
	err := mux.Validate("nope", json.RawMessage(`{}`))
	var pe *PayloadError
	if !errors.Is(err, ErrUnknownType) || errors.As(err, &pe) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Validate(nope) = %v, want ErrUnknownType naming the type", err)
	}
}

func TestWithValidateNil(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("WithValidate(nil) did not panic")
		}
	}()
	WithValidate(nil)
}

func TestPayloadErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *PayloadError
		want string
	}{
		{name: "field", err: &PayloadError{Field: "duration", Reason: "-1s: want 0 to 1h0m0s"}, want: `payload field "duration": -1s: want 0 to 1h0m0s`},
		{name: "whole payload", err: &PayloadError{Reason: "want a JSON object"}, want: "payload: want a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
