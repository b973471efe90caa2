package logging

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// The context field keys, in the order a JSON record carries them. These
// names are a contract with the Alloy pipeline and the Grafana dashboards.
const (
	KeyService       = "service"
	KeyWorkerID      = "worker_id"
	KeyJobID         = "job_id"
	KeyHostname      = "hostname"
	KeyContainerID   = "container_id"
	KeyDeploymentEnv = "deployment_env"
	KeyRegion        = "region"
	// KeyLogger names the logger a record came from; see Named.
	KeyLogger = "logger"
)

const numSlots = 7

var contextKeys = [numSlots]string{KeyService, KeyWorkerID, KeyJobID, KeyHostname, KeyContainerID, KeyDeploymentEnv, KeyRegion}

// slotOf returns the context slot of key, or -1 when key is not a context
// field; the logger name has its own slot, numSlots.
func slotOf(key string) int {
	switch key {
	case KeyService:
		return 0
	case KeyWorkerID:
		return 1
	case KeyJobID:
		return 2
	case KeyHostname:
		return 3
	case KeyContainerID:
		return 4
	case KeyDeploymentEnv:
		return 5
	case KeyRegion:
		return 6
	case KeyLogger:
		return numSlots
	}
	return -1
}

// binding is an immutable set of bound attributes: the context fields in
// their slots and any other attributes in order. Handlers pre-encode it once
// and cache the bytes (see encodedBinding), so binding costs nothing per record.
type binding struct {
	slots [numSlots + 1]slog.Value // the context fields, then the logger name
	set   [numSlots + 1]bool
	extra []slog.Attr

	// cache holds the encoding made by the handler core that last used
	// this binding; a program normally has one core, so it is made once.
	cache atomic.Pointer[encodedBinding]
}

// with returns a new binding: b plus attrs, a later value replacing an
// earlier one under the same key.
func (b *binding) with(attrs []slog.Attr) *binding {
	nb := &binding{}
	if b != nil {
		nb.slots, nb.set = b.slots, b.set
		nb.extra = append(nb.extra, b.extra...)
	}
	for _, a := range attrs {
		if a.Equal(slog.Attr{}) {
			continue
		}
		if i := slotOf(a.Key); i >= 0 {
			nb.slots[i], nb.set[i] = a.Value, true
			continue
		}
		replaced := false
		for j := range nb.extra {
			if nb.extra[j].Key == a.Key {
				nb.extra[j], replaced = a, true
			}
		}
		if !replaced {
			nb.extra = append(nb.extra, a)
		}
	}
	return nb
}

// without returns b less the attributes under keys.
func (b *binding) without(keys []string) *binding {
	nb := b.with(nil)
	for _, k := range keys {
		if i := slotOf(k); i >= 0 {
			nb.slots[i], nb.set[i] = slog.Value{}, false
			continue
		}
		kept := nb.extra[:0]
		for _, a := range nb.extra {
			if a.Key != k {
				kept = append(kept, a)
			}
		}
		nb.extra = kept
	}
	return nb
}

// attrs returns the bound attributes: context fields in slot order, then the rest.
func (b *binding) attrs() []slog.Attr {
	if b == nil {
		return nil
	}
	out := make([]slog.Attr, 0, numSlots+1+len(b.extra))
	if b.set[numSlots] {
		out = append(out, slog.Attr{Key: KeyLogger, Value: b.slots[numSlots]})
	}
	for i := 0; i < numSlots; i++ {
		if b.set[i] {
			out = append(out, slog.Attr{Key: contextKeys[i], Value: b.slots[i]})
		}
	}
	return append(out, b.extra...)
}

var (
	globalMu      sync.Mutex // serialises writers of global; readers load it
	globalBinding atomic.Pointer[binding]
)

func init() { globalBinding.Store(&binding{}) }

// Bind adds attributes to the process-wide context that every later record
// carries, including records from plain slog.Info calls anywhere in the
// program, as the design's bind_log_context does. Arguments are key-value
// pairs or slog.Attr values, as in slog.Logger.With; a later Bind of the same
// key replaces the earlier value. Bind is safe for concurrent use.
//
//	logging.Bind("service", "bot", "worker_id", "worker-1")
func Bind(args ...any) {
	attrs := argsToAttrs(args)
	globalMu.Lock()
	defer globalMu.Unlock()
	globalBinding.Store(globalBinding.Load().with(attrs))
}

// Unbind removes keys from the process-wide context.
func Unbind(keys ...string) {
	globalMu.Lock()
	defer globalMu.Unlock()
	globalBinding.Store(globalBinding.Load().without(keys))
}

// BindDeployment binds the deployment context (hostname, container_id,
// deployment_env, region) process-wide: the design's bind_deployment_context.
func BindDeployment(d Deployment) {
	attrs := d.Attrs()
	args := make([]any, len(attrs))
	for i, a := range attrs {
		args[i] = a
	}
	Bind(args...)
}

// Binding is a snapshot of the process-wide context, taken by Bindings.
type Binding struct{ b *binding }

// Bindings returns the process-wide context as it is now, so that a test can
// put it back with Restore.
func Bindings() Binding { return Binding{globalBinding.Load()} }

// Restore makes b the process-wide context again.
func (b Binding) Restore() {
	globalMu.Lock()
	defer globalMu.Unlock()
	if b.b == nil {
		b.b = &binding{}
	}
	globalBinding.Store(b.b)
}

type ctxKey struct{}

// With returns a copy of ctx that carries the attributes, on top of any the
// context already carries: the per-task counterpart of Bind, as Python's
// contextvars are. Records logged with that context (slog.InfoContext(ctx, ...)
// or logger.InfoContext) carry them, so two goroutines handling two jobs log
// two different job_ids.
//
//	ctx = logging.With(ctx, "job_id", job.ID)
func With(ctx context.Context, args ...any) context.Context {
	parent, _ := ctx.Value(ctxKey{}).(*binding)
	return context.WithValue(ctx, ctxKey{}, parent.with(argsToAttrs(args)))
}

// Attrs returns the attributes bound process-wide and in ctx, context
// fields first in their fixed order, a context value replacing a
// process-wide one under the same key. Handlers other than botfleet's JSON
// handler use it to carry the same fields.
func Attrs(ctx context.Context) []slog.Attr {
	b := globalBinding.Load()
	if ctx != nil {
		if cb, _ := ctx.Value(ctxKey{}).(*binding); cb != nil {
			b = b.with(cb.attrs())
		}
	}
	return b.attrs()
}

// Named returns a logger whose records carry name in their logger field,
// like the logger names of Python's logging module.
func Named(l *slog.Logger, name string) *slog.Logger {
	return l.With(KeyLogger, name)
}

// argsToAttrs turns slog-style arguments into attributes, with slog's own
// rules (a dangling value becomes !BADKEY).
func argsToAttrs(args []any) []slog.Attr {
	if len(args) == 0 {
		return nil
	}
	return slog.Group("", args...).Value.Group()
}
