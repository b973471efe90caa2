package jobs

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Handler runs jobs of one type. Its result is stored as JSON in the job's
// hash; an error fails the attempt (wrap ErrSkipRetry to fail the job for
// good). Handle should return when ctx is done: the consumer cancels it when
// a shutdown gives up waiting.
type Handler interface {
	Handle(ctx context.Context, job *Job) (result any, err error)
}

// HandlerFunc makes a function a Handler.
type HandlerFunc func(ctx context.Context, job *Job) (any, error)

// Handle calls f(ctx, job).
func (f HandlerFunc) Handle(ctx context.Context, job *Job) (any, error) { return f(ctx, job) }

// Mux holds the handlers by job type. The bot asks it which types exist,
// the consumer which handler runs a job. It is safe for concurrent use; the
// zero value is an empty Mux.
type Mux struct {
	mu       sync.RWMutex
	handlers map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for jobs of type typ. Like http.ServeMux, it panics on
// a programming error: an invalid type, a nil handler, a type registered
// twice.
func (m *Mux) Handle(typ string, h Handler) {
	if err := checkType(typ); err != nil {
		panic("jobs: Mux.Handle: " + err.Error())
	}
	if h == nil {
		panic(fmt.Sprintf("jobs: Mux.Handle(%q): nil handler", typ))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[typ]; dup {
		panic(fmt.Sprintf("jobs: Mux.Handle: job type %q registered twice", typ))
	}
	if m.handlers == nil {
		m.handlers = make(map[string]Handler)
	}
	m.handlers[typ] = h
}

// HandleFunc registers f for jobs of type typ; see Handle.
func (m *Mux) HandleFunc(typ string, f func(ctx context.Context, job *Job) (any, error)) {
	if f == nil {
		panic(fmt.Sprintf("jobs: Mux.HandleFunc(%q): nil func", typ))
	}
	m.Handle(typ, HandlerFunc(f))
}

// Has reports whether a handler is registered for typ.
func (m *Mux) Has(typ string) bool {
	_, ok := m.handler(typ)
	return ok
}

// Types returns the registered types, sorted.
func (m *Mux) Types() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	types := make([]string, 0, len(m.handlers))
	for t := range m.handlers {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

func (m *Mux) handler(typ string) (Handler, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h, ok := m.handlers[typ]
	return h, ok
}
