package logging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// printfLogger is go-redis's internal.Logging, declared here as go-redis
// declares it, so the test proves PrintfAdapter fits redis.SetLogger.
type printfLogger interface {
	Printf(ctx context.Context, format string, v ...interface{})
}

func TestPrintfLogger(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	logger := slog.New(NewJSONHandler(&buf, &HandlerOptions{AddSource: true})).With(KeyService, "bot")
	var p printfLogger = PrintfLogger(logger, "redis")
	ctx := With(t.Context(), KeyJobID, "echo.k3f9x2")
	p.Printf(ctx, "redis: connection pool: failed to dial after %d attempts: %v\n", 5,
		errors.New(`dial redis://:hunter2@redis:6379/0: connect: connection refused`))

	out := buf.Bytes()
	if bytes.Count(out, []byte("\n")) != 1 {
		t.Fatalf("want one line, got %q", out)
	}
	m := parseLines(t, out)[0]
	want := map[string]any{
		"levelname": "WARNING",
		"logger":    "redis",
		"message":   "redis: connection pool: failed to dial after 5 attempts: dial redis://:[REDACTED]@redis:6379/0: connect: connection refused",
		"service":   "bot",
		"job_id":    "echo.k3f9x2",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if bytes.Contains(out, []byte("hunter2")) {
		t.Errorf("the password reached the log line: %s", out)
	}
	if src, _ := m["source"].(string); !strings.HasPrefix(src, "logging/printf_test.go:") {
		t.Errorf("source = %q, want the caller of Printf, logging/printf_test.go:<line>", src)
	}
}

func TestPrintfLoggerLevelAndDefault(t *testing.T) {
	isolate(t)
	var quiet bytes.Buffer
	PrintfLogger(slog.New(NewJSONHandler(&quiet, &HandlerOptions{Level: slog.LevelError})), "redis").Printf(t.Context(), "dropped")
	if quiet.Len() != 0 {
		t.Errorf("a WARNING record passed a handler at ERROR: %s", quiet.Bytes())
	}

	// With a nil logger, the default one when the line is printed.
	p := PrintfLogger(nil, "redis")
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var buf bytes.Buffer
	slog.SetDefault(slog.New(NewJSONHandler(&buf, nil)))
	p.Printf(nil, "token: %s", "abc") // a library may pass a nil context
	m := parseLines(t, buf.Bytes())[0]
	if m["logger"] != "redis" || m["levelname"] != "WARNING" || m["message"] != "token: [REDACTED]" {
		t.Errorf("got %v, want a WARNING from redis with the token masked", m)
	}
}
