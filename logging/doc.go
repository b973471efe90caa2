// Package logging is botfleet's structured logging: a fast JSON slog.Handler
// whose records carry the fleet's context fields (service, worker_id, job_id,
// hostname, container_id, deployment_env, region), binding of those fields
// per logger, per context and process-wide, deployment detection, redaction of
// secrets, a pretty console form for development, and size-rotated log files
// laid out as logs/bot, logs/workers and logs/archive.
//
// A program calls Setup once at start-up; from then on every slog call, the
// package-level ones included, writes records in botfleet's format:
//
//	logger, closeLogs, err := logging.Setup(logging.Options{Service: "worker", WorkerID: "worker-1"})
//	if err != nil { ... }
//	defer closeLogs()
//	ctx = logging.With(ctx, "job_id", job.ID)
//	slog.InfoContext(ctx, "job started")
//
// Setup binds the service, worker id and deployment to the logger it
// installs, not to the process, so a program that runs two services builds
// a logger for each with New and every record says which service wrote it.
//
// The JSON record layout is a contract read by Grafana Alloy, Loki and jq;
// docs/wire-format.md describes it.
package logging
