package logging

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"
)

// PrintfAdapter turns the lines a library prints through a Printf method
// into WARNING records of a slog.Logger, so that a program's output stays
// one JSON object per line. Make one with PrintfLogger. It is safe for
// concurrent use.
type PrintfAdapter struct {
	l    *slog.Logger // nil: slog.Default() at each call
	name string
}

// PrintfLogger returns an adapter whose Printf logs the formatted text as a
// WARNING record through l (slog.Default() when l is nil, as it is when the
// line is printed), with name in its logger field. The record goes through
// l's handler like any other, so it carries the bound context and has its
// secrets masked: the password in a Redis URL inside the text is not
// written.
//
// Its method set matches go-redis's internal logger without this package
// importing go-redis, so a program routes go-redis's own lines ("redis:
// connection pool: failed to dial ...") through its logger with:
//
//	redis.SetLogger(logging.PrintfLogger(logger, "redis"))
func PrintfLogger(l *slog.Logger, name string) *PrintfAdapter {
	if l != nil && name != "" {
		l = Named(l, name)
	}
	return &PrintfAdapter{l: l, name: name}
}

// Printf logs fmt.Sprintf(format, v...), less a trailing newline, as a
// WARNING record with ctx, whose bound fields (With) it carries; a nil ctx
// is taken as context.Background(). The record's source, when the handler
// adds one, is the caller of Printf.
func (p *PrintfAdapter) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l := p.l
	if l == nil {
		l = slog.Default()
		if p.name != "" {
			l = Named(l, p.name)
		}
	}
	if !l.Enabled(ctx, slog.LevelWarn) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:]) // runtime.Callers and Printf itself
	msg := strings.TrimSuffix(fmt.Sprintf(format, v...), "\n")
	_ = l.Handler().Handle(ctx, slog.NewRecord(time.Now(), slog.LevelWarn, msg, pcs[0]))
}
