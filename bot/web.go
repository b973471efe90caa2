package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// MaxRequestBody bounds a job submission's body.
const MaxRequestBody = 1 << 20

// Web is the web_frontend: an HTTP API that submits jobs and reports on
// them.
//
//	POST /api/jobs        {"type": "http.fetch", "payload": {...}} -> 202 {"id": ..., "status": "queued", ...}
//	GET  /api/jobs/{id}   -> 200 the job's status, attempts, result or error
type Web struct{ deps Deps }

// NewWeb returns the web frontend.
func NewWeb(d Deps) *Web { return &Web{deps: d} }

// Name returns "web_frontend".
func (*Web) Name() string { return "web_frontend" }

// Run returns at once: the web frontend only has HTTP routes.
func (*Web) Run(context.Context) error { return nil }

// Mount registers the job API.
func (w *Web) Mount(handle func(string, http.Handler, bool)) {
	handle("POST /api/jobs", w.count(http.HandlerFunc(w.submit)), true)
	handle("GET /api/jobs/{id}", w.count(http.HandlerFunc(w.get)), true)
}

// submitRequest is the body of POST /api/jobs.
type submitRequest struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (w *Web) submit(rw http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(rw, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want application/json", ct))
			return
		}
	}
	var req submitRequest
	dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, MaxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(rw, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", MaxRequestBody))
			return
		}
		writeError(rw, http.StatusBadRequest, "request body: "+describeJSONError(err)+`; want {"type": "<job type>", "payload": {...}}`)
		return
	}
	if dec.More() {
		writeError(rw, http.StatusBadRequest, "request body: want one JSON object, found more after it")
		return
	}
	if req.Type == "" {
		writeError(rw, http.StatusBadRequest, `"type" is missing; want one of `+strings.Join(w.deps.Types.Types(), ", "))
		return
	}
	if !w.deps.Types.Has(req.Type) {
		writeError(rw, http.StatusBadRequest, fmt.Sprintf("unknown job type %q; want one of %s", req.Type, strings.Join(w.deps.Types.Types(), ", ")))
		return
	}
	payload := req.Payload
	if len(payload) == 0 || string(payload) == "null" {
		payload = json.RawMessage("{}")
	}
	info, err := w.deps.Queue.Enqueue(r.Context(), req.Type, payload)
	if err != nil {
		w.deps.Logger.ErrorContext(r.Context(), "job not queued", "type", req.Type, "error", err)
		writeError(rw, http.StatusServiceUnavailable, "the job queue is unavailable; try again")
		return
	}
	w.deps.Metrics.Submitted(req.Type, w.Name())
	ctx := logging.With(r.Context(), logging.KeyJobID, info.ID)
	w.deps.Logger.InfoContext(ctx, "job submitted", "type", req.Type, "remote", r.RemoteAddr)
	rw.Header().Set("Location", "/api/jobs/"+info.ID)
	writeJSON(rw, http.StatusAccepted, info)
}

func (w *Web) get(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, err := w.deps.Queue.Get(r.Context(), id)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		writeError(rw, http.StatusNotFound, fmt.Sprintf("no job %q (unknown, or its record expired)", id))
	case err != nil:
		w.deps.Logger.ErrorContext(r.Context(), "job lookup failed", "job", id, "error", err)
		writeError(rw, http.StatusServiceUnavailable, "the job store is unavailable; try again")
	default:
		writeJSON(rw, http.StatusOK, info)
	}
}

// count records each answered request in bot_frontend_requests_total.
func (w *Web) count(next http.Handler) http.Handler {
	return w.deps.Metrics.CountRequests(w.Name(), next)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Flush).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON: it ends too early"
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
	}
	return err.Error()
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(v)
}

func writeError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, map[string]string{"error": msg})
}
