package cli

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging"
)

// redisLog receives go-redis's own lines ("redis: connection pool: failed
// to dial ..."), which go-redis otherwise prints as plain text on stderr,
// breaking the one-JSON-object-per-line contract Alloy and Loki rely on.
// go-redis's logger is one process-wide variable, so it is set once, to
// this forwarder, and each command points the forwarder at its logger.
var redisLog = &redisForwarder{}

var redisLogOnce sync.Once

type redisForwarder struct {
	to atomic.Pointer[logging.PrintfAdapter]
}

// Printf logs the line through the command's logger: a WARNING record with
// logger "redis", redacted like every record.
func (f *redisForwarder) Printf(ctx context.Context, format string, v ...any) {
	if a := f.to.Load(); a != nil {
		a.Printf(ctx, format, v...)
	}
}

// routeRedisLogs sends go-redis's lines to l from now on. Before any
// command sets its logger, they go as JSON to stderr.
func routeRedisLogs(l *slog.Logger) {
	redisLogOnce.Do(func() {
		redisLog.to.Store(logging.PrintfLogger(slog.New(logging.NewJSONHandler(os.Stderr, nil)), "redis"))
		redis.SetLogger(redisLog)
	})
	if l != nil {
		redisLog.to.Store(logging.PrintfLogger(l, "redis"))
	}
}
