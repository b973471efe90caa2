package wire

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestUnixRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Time
		err  bool
	}{
		{name: "whole seconds", in: "1688851200", want: time.Unix(1688851200, 0)},
		{name: "milliseconds, exactly", in: "1688851200.123", want: time.Unix(1688851200, 123e6)},
		{name: "nanoseconds, exactly", in: "1688851200.123456789", want: time.Unix(1688851200, 123456789)},
		{name: "exponent form", in: "1.55e1", want: time.Unix(15, 5e8)},
		{name: "negative", in: "-1", err: true},
		{name: "NaN", in: "NaN", err: true},
		{name: "too far", in: "1e20", err: true},
		{name: "not a number", in: "soon", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUnix(tt.in)
			if (err != nil) != tt.err || err == nil && !got.Equal(tt.want) {
				t.Fatalf("ParseUnix(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
	at := time.Unix(1688851200, 123456789)
	if got := FormatUnix(at); got != "1688851200.123" {
		t.Errorf("FormatUnix = %q, want 1688851200.123", got)
	}
	if got := FormatUnix(time.Time{}); got != "" {
		t.Errorf("FormatUnix(zero) = %q, want empty", got)
	}
}

func TestFieldErrorAndReplies(t *testing.T) {
	err := FieldErrorf("heartbeat", "interval", "%q: want more than 0 seconds", "0")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "interval" || err.Error() != `heartbeat: field "interval": "0": want more than 0 seconds` {
		t.Errorf("got %v", err)
	}
	if IsReplyError(redis.Nil) || IsReplyError(errors.New("dial tcp: refused")) || IsReplyError(nil) {
		t.Error("IsReplyError is true for a non-reply")
	}
}
