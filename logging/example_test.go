package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"

	"github.com/botfleet/botfleet/logging"
)

// withoutTimestamp prints records with their timestamp dropped, so the
// examples' output is the same on every run.
type withoutTimestamp struct{}

func (withoutTimestamp) Write(p []byte) (int, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	_, rest, _ := bytes.Cut(p, []byte(`",`)) // the timestamp is always first
	fmt.Printf("{%s", rest)
	return len(p), nil
}

func ExampleNewJSONHandler() {
	logger := slog.New(logging.NewJSONHandler(withoutTimestamp{}, nil)).With("service", "worker", "worker_id", "worker-1")
	logger.Info("job finished", "type", "echo", "password", "hunter2")
	// Output:
	// {"levelname":"INFO","message":"job finished","service":"worker","worker_id":"worker-1","type":"echo","password":"[REDACTED]"}
}

func ExampleWith() {
	logger := slog.New(logging.NewJSONHandler(withoutTimestamp{}, nil))
	ctx := logging.With(context.Background(), logging.KeyJobID, "browser.navigate.k3f9x2")
	logger.InfoContext(ctx, "page loaded", "url", "https://bot:pa55@example.com/")
	// Output:
	// {"levelname":"INFO","message":"page loaded","job_id":"browser.navigate.k3f9x2","url":"https://bot:[REDACTED]@example.com/"}
}

func ExampleSetup() {
	// Once, at start-up: reads LOG_LEVEL, LOG_FORMAT, LOG_TO_FILE, ...,
	// binds service, worker_id and the detected deployment to the logger,
	// and installs it as slog.Default().
	_, closeLogs, err := logging.Setup(logging.Options{Service: "worker", WorkerID: "worker-1"})
	if err != nil {
		log.Fatal(err) // e.g. LOG_LEVEL="LOUD": want one of DEBUG, INFO, WARNING, ERROR, CRITICAL
	}
	defer closeLogs()
	slog.Info("worker started") // carries service, worker_id, hostname, deployment_env, ...
}

func ExampleNew() {
	// A program that runs a bot and a worker side by side gives each a
	// logger of its own; neither binds anything process-wide.
	cfg := logging.DefaultConfig() // normally logging.ConfigFromEnv(nil)
	d := logging.Deployment{Hostname: "bot-server-01", Env: "production"}
	bot, closeBot, err := logging.New(logging.Options{Service: "bot", Config: &cfg, Deployment: &d, Stdout: withoutTimestamp{}})
	if err != nil {
		log.Fatal(err)
	}
	defer closeBot()
	worker, closeWorker, err := logging.New(logging.Options{Service: "worker", WorkerID: "worker-1", Config: &cfg, Deployment: &d, Stdout: withoutTimestamp{}})
	if err != nil {
		log.Fatal(err)
	}
	defer closeWorker()

	bot.Info("job queued", "type", "echo")
	ctx := logging.With(context.Background(), logging.KeyJobID, "echo.k3f9x2")
	worker.InfoContext(ctx, "job started")
	// Output:
	// {"levelname":"INFO","message":"job queued","service":"bot","hostname":"bot-server-01","deployment_env":"production","type":"echo"}
	// {"levelname":"INFO","message":"job started","service":"worker","worker_id":"worker-1","job_id":"echo.k3f9x2","hostname":"bot-server-01","deployment_env":"production"}
}
