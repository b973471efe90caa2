package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/botfleet/botfleet/logging"
)

// badEnvironment makes the one error a user sees for a bad environment: the
// command's own variables' errors and the LOG_* ones, every one named,
// exit code 2.
func badEnvironment(errs ...error) error {
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("bad environment:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
	}
	return nil
}

// setupLogs reads the LOG_* variables (with other, the command's own
// variables' error, for one report of every bad variable) and sets up the
// process's logging as service (and worker id, for a worker), on the
// deployment the command detected once. go-redis's own log lines go
// through the same logger, so the console stays one JSON object per line.
func setupLogs(env *Env, other error, service, workerID string, d *logging.Deployment) (*slog.Logger, func() error, error) {
	lc, err := logging.ConfigFromEnv(env.Getenv)
	if err := badEnvironment(other, err); err != nil {
		return nil, nil, err
	}
	logger, closeLogs, err := logging.Setup(logging.Options{Service: service, WorkerID: workerID, Config: &lc, Stdout: env.Stdout, Deployment: d})
	if err != nil {
		return nil, nil, &exitError{code: 2, err: err}
	}
	routeRedisLogs(logger)
	return logger, closeLogs, nil
}
