package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/botfleet/botfleet/internal/version"
	"github.com/botfleet/botfleet/logging"
)

var osGetenv = os.Getenv

func init() {
	register(command{name: "version", summary: "print the botfleet version", run: runVersion})
	register(command{name: "logdemo", summary: "write sample log lines of every level, to see the format", run: runLogdemo})
}

func runVersion(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "version", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "botfleet %s (%s)\n", version.String(), version.GoVersion())
	return nil
}

// runLogdemo logs a short, realistic sequence: start-up with bound context,
// a job with its own job_id, a warning, an error with a secret that gets
// masked, and a critical line.
func runLogdemo(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "logdemo", "")
	service := fs.String("service", "worker", "service name to log as")
	workerID := fs.String("worker-id", "worker-1", "worker id to log as")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := logging.ConfigFromEnv(env.Getenv)
	if err != nil {
		return err
	}
	restore := logging.Bindings()
	defer restore.Restore()
	prev := slog.Default()
	defer slog.SetDefault(prev)
	logger, closeLogs, err := logging.Setup(logging.Options{Service: *service, WorkerID: *workerID, Config: &cfg, Stdout: env.Stdout})
	if err != nil {
		return err
	}
	defer closeLogs()

	logger.Debug("configuration loaded", "log_format", cfg.Format, "log_to_file", cfg.ToFile)
	logger.Info("worker started", "concurrency", 1, "queue", "default")
	jobCtx := logging.With(ctx, logging.KeyJobID, "browser.navigate.k3f9x2")
	logger.InfoContext(jobCtx, "job started", "type", "browser.navigate", slog.Group("payload", "url", "https://example.com/login", "timeout", 30*time.Second))
	logger.WarnContext(jobCtx, "page slow to load", "elapsed", 4200*time.Millisecond, "attempt", 2)
	logger.ErrorContext(jobCtx, "job failed", "error", errors.New("navigation timeout"), "redis_url", "redis://:hunter2@redis:6379/0", "api_key", "sk-live-0123456789")
	logger.Log(ctx, logging.LevelCritical, "browser pool exhausted", "open_sessions", 16)
	logging.Named(logger, "heartbeat").Info("heartbeat sent", "interval", 30*time.Second)
	return nil
}
