package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The limits of GET /api/fleet/history's n, and its default, also the
// length of the history GET /api/fleet/workers/{id} includes.
const (
	DefaultHistory = 60
	MaxHistory     = 1000
)

// requestTimeout bounds the Redis reads of one request (or one event).
const requestTimeout = 5 * time.Second

// eventInterval is how often GET /api/fleet/events sends the fleet.
const eventInterval = 2 * time.Second

// APIPrefix is the path under which NewHandler's routes live; a server
// mounts the handler on it (monitoring.Server.HandlePrefix) and decides
// there whether it needs a token.
const APIPrefix = "/api/fleet"

// NewHandler returns the fleet API read through r:
//
//	GET /api/fleet                 the Fleet; with any of ?state=&prefix=&limit=&cursor=, a Page
//	GET /api/fleet/summary         the Summary alone, without reading every hash
//	GET /api/fleet/workers/{id}    one Worker with "history": its last 60 Points
//	GET /api/fleet/history         ?worker=<id>&n=<1..1000, default 60>: Points
//	GET /api/fleet/targets         Prometheus HTTP service discovery
//	GET /api/fleet/events          Server-Sent Events: the Fleet (or, with the page parameters, the Page) every 2s
//
// Every answer is JSON (but the event stream); an error is {"error": "..."}
// with 503 when Redis cannot be read, 404 for a path it does not serve and
// 405 for a method other than GET. The shapes are documented in
// docs/wire-format.md, "Fleet view".
func NewHandler(r *Reader) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+APIPrefix, r.serveFleet)
	mux.HandleFunc("GET "+APIPrefix+"/summary", r.serveSummary)
	mux.HandleFunc("GET "+APIPrefix+"/workers/{id}", r.serveWorker)
	mux.HandleFunc("GET "+APIPrefix+"/history", r.serveHistory)
	mux.HandleFunc("GET "+APIPrefix+"/targets", r.serveTargets)
	mux.HandleFunc("GET "+APIPrefix+"/events", r.serveEvents)
	return mux
}

func (r *Reader) serveFleet(w http.ResponseWriter, req *http.Request) {
	read, err := r.reading(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	v, err := read(ctx)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// reading returns what GET /api/fleet and its events read for req: the
// whole Fleet, or a Page when any of the page parameters is given. The
// error names the parameter that is wrong.
func (r *Reader) reading(req *http.Request) (func(context.Context) (any, error), error) {
	v := req.URL.Query()
	if !v.Has("state") && !v.Has("prefix") && !v.Has("limit") && !v.Has("cursor") {
		return func(ctx context.Context) (any, error) { return r.List(ctx) }, nil
	}
	q := Query{State: v.Get("state"), Prefix: v.Get("prefix"), Cursor: v.Get("cursor")}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxPageSize {
			return nil, fmt.Errorf("limit=%q: want an integer from 1 to %d", l, MaxPageSize)
		}
		q.Limit = n
	}
	if _, err := q.check(); err != nil {
		var qerr *QueryError
		if errors.As(err, &qerr) {
			return nil, fmt.Errorf("%s=%q: want %s", qerr.Field, qerr.Value, qerr.Want)
		}
		return nil, err
	}
	return func(ctx context.Context) (any, error) { return r.Page(ctx, q) }, nil
}

func (r *Reader) serveSummary(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	s, now, err := r.Summary(ctx)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		GeneratedAt float64 `json:"generated_at"`
		Summary     Summary `json:"summary"`
	}{unixSeconds(now), s})
}

func (r *Reader) serveWorker(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	id := req.PathValue("id")
	wk, err := r.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no worker %q: never registered, stopped, or its heartbeat expired", id))
		return
	}
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	history, err := r.History(ctx, id, DefaultHistory)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		workerJSON
		History []Point `json:"history"`
	}{wk.toJSON(), history})
}

func (r *Reader) serveHistory(w http.ResponseWriter, req *http.Request) {
	n := DefaultHistory
	if v := req.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > MaxHistory {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("n=%q: want an integer from 1 to %d", v, MaxHistory))
			return
		}
	}
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	points, err := r.History(ctx, req.URL.Query().Get("worker"), n)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, points)
}

func (r *Reader) serveTargets(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	f, err := r.List(ctx)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	groups, _ := targets(f)
	writeJSON(w, http.StatusOK, groups)
}

// serveEvents streams the fleet as Server-Sent Events ("event: fleet") until
// the client goes away. A failed read is sent as "event: error" and the
// stream goes on, so a dashboard rides out a Redis restart; only a failure
// of the first read answers 503.
func (r *Reader) serveEvents(w http.ResponseWriter, req *http.Request) {
	if n := r.streams.Add(1); n > int64(r.o.MaxStreams) {
		r.streams.Add(-1)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d event streams are open, the most this server serves (FLEET_MAX_STREAMS); poll GET %s instead", r.o.MaxStreams, APIPrefix))
		return
	}
	defer r.streams.Add(-1)
	read, err := r.reading(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := req.Context()
	f, err := within(ctx, read)
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a server's WriteTimeout would cut the stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", eventInterval.Milliseconds())
	tick := time.NewTicker(eventInterval)
	defer tick.Stop()
	for {
		event, data := "fleet", f
		if err != nil {
			event, data = "error", errorBody(err)
		}
		b, _ := json.Marshal(data)
		if _, werr := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); werr != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f, err = within(ctx, read)
	}
}

func within(ctx context.Context, read func(context.Context) (any, error)) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return read(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func errorBody(err error) map[string]string {
	return map[string]string{"error": "the fleet cannot be read from Redis: " + err.Error()}
}

func writeUnavailable(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusServiceUnavailable, errorBody(err))
}
