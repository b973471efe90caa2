package logging

import (
	"context"
	"log/slog"
	"slices"
)

// ContextHandler wraps any slog.Handler so that its records carry the bound
// context fields (Bind, With) at the top level, ahead of the record's own
// attributes, and have their secrets masked, as JSONHandler's records do.
// The pretty console handler and the test recorder are built on it. It is
// safe for concurrent use when the wrapped handler is.
type ContextHandler struct {
	next   slog.Handler
	level  slog.Leveler
	red    *Redactor
	frames [][]slog.Attr // frames[0]: attributes at the top; frames[i]: inside groups[i-1]
	groups []string
}

// NewContextHandler returns a ContextHandler around next. Records below
// opts.Level are dropped (nil opts: INFO); next sees only what passes.
func NewContextHandler(next slog.Handler, opts *HandlerOptions) *ContextHandler {
	if opts == nil {
		opts = &HandlerOptions{}
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &ContextHandler{next: next, level: level, red: NewRedactor(opts.RedactKeys), frames: make([][]slog.Attr, 1)}
}

// Enabled reports whether records at level l pass.
func (h *ContextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.next.Enabled(ctx, l)
}

// WithAttrs returns a handler whose records carry attrs in the current group.
func (h *ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.frames = slices.Clone(h.frames)
	last := len(h2.frames) - 1
	h2.frames[last] = append(slices.Clip(h2.frames[last]), attrs...)
	return &h2
}

// WithGroup returns a handler that nests later attributes under name.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.frames = append(slices.Clip(h.frames), nil)
	h2.groups = append(slices.Clip(h.groups), name)
	return &h2
}

// Handle passes next a copy of r with the bound context first, the
// handler's and the record's attributes after, nested in their groups, and
// secrets masked.
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	var inner []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		inner = append(inner, a)
		return true
	})
	for i := len(h.groups) - 1; i >= 0; i-- {
		content := append(slices.Clip(h.frames[i+1]), inner...)
		inner = []slog.Attr{{Key: h.groups[i], Value: slog.GroupValue(content...)}}
	}
	// Each context field comes from the closest binding, as in
	// JSONHandler: the context (With), then this handler
	// (logger.With("service", ...)), then the process (Bind).
	b := globalBinding.Load()
	var rest []slog.Attr // the handler's other top-level attributes
	for _, a := range h.frames[0] {
		if slotOf(a.Key) >= 0 {
			b = b.with([]slog.Attr{a})
		} else {
			rest = append(rest, a)
		}
	}
	if ctx != nil {
		if cb, _ := ctx.Value(ctxKey{}).(*binding); cb != nil {
			b = b.with(cb.attrs())
		}
	}
	top := append(b.attrs(), rest...)
	top = append(top, inner...)

	out := slog.NewRecord(r.Time, r.Level, redactValue(r.Message), r.PC)
	for _, a := range top {
		out.AddAttrs(h.redactAttr(a))
	}
	return h.next.Handle(ctx, out)
}

// redactAttr masks a's value if its key looks secret or its text holds a
// secret, at any depth of groups.
func (h *ContextHandler) redactAttr(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Key != "" && h.red.SecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(redactValue(a.Value.String()))
	case slog.KindGroup:
		attrs := a.Value.Group()
		out := make([]slog.Attr, len(attrs))
		for i, ga := range attrs {
			out[i] = h.redactAttr(ga)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(redactValue(err.Error()))
		}
	}
	return a
}
