package jobs

import (
	"context"
	"encoding/json"
	"errors"
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

// Mux holds the handlers by job type, each with its payload validator if
// it has one. The bot asks it which types exist and whether a payload is
// acceptable, the consumer which handler runs a job. It is safe for
// concurrent use; the zero value is an empty Mux.
type Mux struct {
	mu     sync.RWMutex
	routes map[string]route
}

// route is what a Mux holds for a job type.
type route struct {
	h        Handler
	validate func(payload json.RawMessage) error // nil: only the checks every payload gets
}

// HandleOption changes how Handle or HandleFunc registers a handler.
type HandleOption func(*route)

// WithValidate makes fn the type's validator (see Validator), in place of
// the handler's own Validate method if it has one. It panics if fn is nil.
func WithValidate(fn func(payload json.RawMessage) error) HandleOption {
	if fn == nil {
		panic("jobs: WithValidate: nil func")
	}
	return func(r *route) { r.validate = fn }
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for jobs of type typ, with h's Validate method as the
// type's validator if h implements Validator, unless WithValidate gives
// another. Like http.ServeMux, it panics on a programming error: an invalid
// type, a nil handler, a type registered twice.
func (m *Mux) Handle(typ string, h Handler, opts ...HandleOption) {
	if err := checkType(typ); err != nil {
		panic("jobs: Mux.Handle: " + err.Error())
	}
	if h == nil {
		panic(fmt.Sprintf("jobs: Mux.Handle(%q): nil handler", typ))
	}
	r := route{h: h}
	if v, ok := h.(Validator); ok {
		r.validate = v.Validate
	}
	for _, o := range opts {
		o(&r)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.routes[typ]; dup {
		panic(fmt.Sprintf("jobs: Mux.Handle: job type %q registered twice", typ))
	}
	if m.routes == nil {
		m.routes = make(map[string]route)
	}
	m.routes[typ] = r
}

// HandleFunc registers f for jobs of type typ; see Handle.
func (m *Mux) HandleFunc(typ string, f func(ctx context.Context, job *Job) (any, error), opts ...HandleOption) {
	if f == nil {
		panic(fmt.Sprintf("jobs: Mux.HandleFunc(%q): nil func", typ))
	}
	m.Handle(typ, HandlerFunc(f), opts...)
}

// Validate checks a payload for a job of type typ, as the bot does before
// accepting one: every payload must be valid UTF-8 and one JSON value with
// nothing after it (empty counts as null), and then pass the type's
// validator if it has one. The error is a *PayloadError naming the field
// ("" for the payload as a whole) and what is allowed, or, for a type with
// no handler, wraps ErrUnknownType. A worker's handler should check what it
// decodes all the same: a job may come from a producer that did not call
// Validate.
func (m *Mux) Validate(typ string, payload json.RawMessage) error {
	m.mu.RLock()
	r, ok := m.routes[typ]
	m.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	if err := checkJSON(payload); err != nil {
		return err
	}
	if r.validate == nil {
		return nil
	}
	err := r.validate(payload)
	var pe *PayloadError
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return &PayloadError{Reason: err.Error(), err: err}
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
	types := make([]string, 0, len(m.routes))
	for t := range m.routes {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

func (m *Mux) handler(typ string) (Handler, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.routes[typ]
	return r.h, ok
}
