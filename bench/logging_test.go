// Package bench compares botfleet's components with their peers. It is its
// own module so that the peers (zap, zerolog) never become dependencies of
// botfleet. Run it with `make bench`; docs/performance.md records the results.
package bench

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/botfleet/botfleet/logging"
)

// The same record for every logger: seven context fields bound once, a
// message, and three call attributes (a string, an int, a duration).
var ctxFields = [][2]string{
	{"service", "worker"}, {"worker_id", "worker-1"}, {"job_id", "browser.navigate.abc123"},
	{"hostname", "bot-server-01"}, {"container_id", "a1b2c3d4e5f6"}, {"deployment_env", "production"},
	{"region", "us-west-1"},
}

const msg = "job finished"

func slogArgs() []any {
	var args []any
	for _, f := range ctxFields {
		args = append(args, f[0], f[1])
	}
	return args
}

func slogAttrs() []slog.Attr {
	var attrs []slog.Attr
	for _, f := range ctxFields {
		attrs = append(attrs, slog.String(f[0], f[1]))
	}
	return attrs
}

// logRecord logs the record's message and call attributes through logger.
func logRecord(ctx context.Context, logger *slog.Logger) {
	logger.LogAttrs(ctx, slog.LevelInfo, msg, slog.String("type", "browser.navigate"), slog.Int("attempt", 2), slog.Duration("took", 1500*time.Millisecond))
}

func runSlog(b *testing.B, h slog.Handler) {
	logger := slog.New(h).With(slogArgs()...)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		logRecord(ctx, logger)
	}
}

// nopHandler accepts every record and does nothing with it: through it, a
// benchmark measures slog.Logger's own work (the caller's PC, time.Now, the
// Record), the floor under every slog handler.
type nopHandler struct{}

func (nopHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (nopHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nopHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nopHandler) WithGroup(string) slog.Handler           { return h }

func newZap(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), zapcore.InfoLevel)
	var fields []zap.Field
	for _, f := range ctxFields {
		fields = append(fields, zap.String(f[0], f[1]))
	}
	return zap.New(core).With(fields...)
}

func newZerolog(w io.Writer) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	c := zerolog.New(w).With().Timestamp()
	for _, f := range ctxFields {
		c = c.Str(f[0], f[1])
	}
	return c.Logger()
}

// BenchmarkLogger is the end-to-end table of docs/performance.md: each
// sub-benchmark writes the same record to io.Discard, from one goroutine.
// The slog-based ones go through slog.Logger, as a program does.
func BenchmarkLogger(b *testing.B) {
	b.Run("botfleet", func(b *testing.B) {
		runSlog(b, logging.NewJSONHandler(io.Discard, nil))
	})
	b.Run("botfleet-bind", func(b *testing.B) {
		// The context bound process-wide (logging.Bind), as a single-service program may.
		saved := logging.Bindings()
		defer saved.Restore()
		logging.Bind(slogArgs()...)
		logger := slog.New(logging.NewJSONHandler(io.Discard, nil))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			logRecord(ctx, logger)
		}
	})
	b.Run("slog.JSONHandler", func(b *testing.B) {
		runSlog(b, slog.NewJSONHandler(io.Discard, nil))
	})
	b.Run("zap", func(b *testing.B) {
		logger := newZap(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			logger.Info(msg, zap.String("type", "browser.navigate"), zap.Int("attempt", 2), zap.Duration("took", 1500*time.Millisecond))
		}
	})
	b.Run("zerolog", func(b *testing.B) {
		logger := newZerolog(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			logger.Info().Str("type", "browser.navigate").Int("attempt", 2).Dur("took", 1500*time.Millisecond).Msg(msg)
		}
	})
	b.Run("slog-nop", func(b *testing.B) {
		runSlog(b, nopHandler{})
	})
}

// BenchmarkHandler measures the handlers alone: Handle of one record built
// beforehand, on a handler with the context bound by WithAttrs, so slog.Logger's
// share (caller PC, time.Now, building the Record) is left out.
func BenchmarkHandler(b *testing.B) {
	for _, tt := range []struct {
		name string
		h    slog.Handler
	}{
		{"botfleet", logging.NewJSONHandler(io.Discard, nil)},
		{"slog.JSONHandler", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			h := tt.h.WithAttrs(slogAttrs())
			var pcs [1]uintptr
			runtime.Callers(1, pcs[:])
			r := slog.NewRecord(time.Now(), slog.LevelInfo, msg, pcs[0])
			r.AddAttrs(slog.String("type", "browser.navigate"), slog.Int("attempt", 2), slog.Duration("took", 1500*time.Millisecond))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Handle(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoggerParallel is BenchmarkLogger's record from GOMAXPROCS
// goroutines sharing one logger, so the handler's lock and buffer pool are
// contended.
func BenchmarkLoggerParallel(b *testing.B) {
	for _, tt := range []struct {
		name string
		h    slog.Handler
	}{
		{"botfleet", logging.NewJSONHandler(io.Discard, nil)},
		{"slog.JSONHandler", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			logger := slog.New(tt.h).With(slogArgs()...)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					logRecord(ctx, logger)
				}
			})
		})
	}
}
