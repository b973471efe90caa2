package logtest_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/logging/logtest"
)

// TestStructuredLogging is the design's "Testing Log Structure" test, in Go.
func TestStructuredLogging(t *testing.T) {
	rec := logtest.Capture(t)
	logging.Bind("service", "test", "worker_id", "test-worker")

	slog.Default().WithGroup("req").Info("Test message", "custom_field", "value", "password", "hunter2")

	records := rec.Records()
	if len(records) != 1 {
		t.Fatalf("got %d records, want 1", len(records))
	}
	r := records[0]
	if r.Attrs["service"] != "test" || r.Attrs["worker_id"] != "test-worker" {
		t.Errorf("bound context missing: %v", r.Attrs)
	}
	req, _ := r.Attrs["req"].(map[string]any)
	if req["custom_field"] != "value" || req["password"] != logging.Redacted {
		t.Errorf("req = %v", req)
	}
	if r.Message != "Test message" || r.Level != slog.LevelInfo {
		t.Errorf("got %q at %v", r.Message, r.Level)
	}
}

func TestCaptureRestores(t *testing.T) {
	before := slog.Default()
	t.Run("inner", func(t *testing.T) {
		logtest.Capture(t)
		logging.Bind("service", "inner")
	})
	if slog.Default() != before {
		t.Error("default logger not restored")
	}
	for _, a := range logging.Attrs(context.Background()) {
		if a.Key == "service" && a.Value.String() == "inner" {
			t.Error("process-wide binding not restored")
		}
	}
}

func ExampleRecorder() {
	rec := logtest.NewRecorder()
	ctx := logging.With(context.Background(), "job_id", "echo.k3f9x2")
	rec.Logger().InfoContext(ctx, "job done", "attempts", 1)
	r := rec.Records()[0]
	fmt.Println(r.Message, r.Attrs["job_id"], r.Attrs["attempts"])
	// Output: job done echo.k3f9x2 1
}
