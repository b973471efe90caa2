package bot

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/botfleet/botfleet/internal/wire"
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
	handle(SubmitPattern, w.count(http.HandlerFunc(w.submit)), true)
	handle("GET /api/jobs/{id}", w.count(http.HandlerFunc(w.get)), true)
}

// SubmitPattern is the job submission route: the bot guards it with the
// submit token (SUBMIT_TOKEN), not the read token.
const SubmitPattern = "POST /api/jobs"

// submitRequest is the body of POST /api/jobs.
type submitRequest struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// IdempotencyHeader is the request header that makes a retried POST
// /api/jobs return the job the first request queued, as payment APIs do.
const IdempotencyHeader = "Idempotency-Key"

// backlogRetryAfter is the Retry-After of a 429 for a full backlog.
const backlogRetryAfter = "10"

// submit queues a job. Every answer is true: 202 means queued (200 with
// Idempotent-Replayed when the key had queued it already); 4xx means not
// queued; 503 "unavailable" means not queued; 503 "unknown" names the id to
// look up, because a request that timed out may still have queued it.
func (w *Web) submit(rw http.ResponseWriter, r *http.Request) {
	req, key, msg, code := w.readSubmit(rw, r)
	if code != 0 {
		w.refuse(rw, r, code, "bad_request", msg)
		return
	}
	id := jobs.NewID(req.Type)
	ctx, cancel := w.redisContext(r.Context())
	defer cancel()
	info, existed, err := w.deps.Queue.EnqueueWith(ctx, req.Type, req.Payload, jobs.EnqueueOptions{ID: id, IdempotencyKey: key})
	logCtx := logging.With(r.Context(), logging.KeyJobID, id)
	switch {
	case errors.Is(err, jobs.ErrBacklogFull):
		rw.Header().Set("Retry-After", backlogRetryAfter)
		w.deps.Logger.WarnContext(r.Context(), "job refused: the queue's backlog is full", "type", req.Type, "error", err)
		w.refuse(rw, r, http.StatusTooManyRequests, "backlog_full", "the queue's backlog is at its limit (JOB_MAX_BACKLOG); not queued: try again later")
	case err != nil && wire.IsReplyError(err):
		w.deps.Logger.ErrorContext(logCtx, "job not queued", "type", req.Type, "error", err)
		w.refuse(rw, r, http.StatusServiceUnavailable, "redis_error", "the job queue refused the job; not queued: try again")
	case errors.Is(err, jobs.ErrNotReplicated):
		w.deps.Logger.ErrorContext(logCtx, "job not confirmed by replicas", "type", req.Type, "error", err)
		w.answerUnknown(rw, id, "the job is on the Redis primary but not confirmed by enough replicas (REDIS_WAIT_REPLICAS), so a failover could lose it. GET /api/jobs/"+id+
			" tells whether it is there, or send the request again with the same Idempotency-Key")
	case err != nil && existed:
		// The key had queued a job, whose record could not be read now.
		w.deps.Logger.WarnContext(logging.With(r.Context(), logging.KeyJobID, info.ID), "idempotent replay: the job exists but could not be read", "error", err)
		rw.Header().Set("Location", "/api/jobs/"+info.ID)
		writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"id": info.ID, "status": "exists",
			"error": "this Idempotency-Key queued job " + info.ID + " already; its record cannot be read now: GET /api/jobs/" + info.ID + " later"})
	case err != nil:
		w.deps.Logger.ErrorContext(logCtx, "job submission outcome unknown", "type", req.Type, "error", err)
		w.answerUnknown(rw, id, "Redis did not answer in time: the job may or may not be queued. GET /api/jobs/"+id+
			" tells (404 means not queued), or send the request again with the same Idempotency-Key")
	case existed:
		w.deps.Logger.InfoContext(logging.With(r.Context(), logging.KeyJobID, info.ID), "idempotent replay", "type", req.Type)
		rw.Header().Set("Idempotent-Replayed", "true")
		rw.Header().Set("Location", "/api/jobs/"+info.ID)
		writeJSON(rw, http.StatusOK, info)
	default:
		w.deps.Metrics.Submitted(req.Type, w.Name())
		w.deps.Logger.InfoContext(logCtx, "job submitted", "type", req.Type, "remote", r.RemoteAddr)
		rw.Header().Set("Location", "/api/jobs/"+info.ID)
		writeJSON(rw, http.StatusAccepted, info)
	}
}

// readSubmit reads and checks a submission: its media type, size, UTF-8,
// one JSON object with nothing after it, a known type, the type's payload
// rules and the idempotency key. A non-zero code is the refusal's, with msg.
func (w *Web) readSubmit(rw http.ResponseWriter, r *http.Request) (req submitRequest, key, msg string, code int) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return req, "", fmt.Sprintf("Content-Type %q: want application/json", ct), http.StatusUnsupportedMediaType
		}
	}
	key = r.Header.Get(IdempotencyHeader)
	if msg := checkIdempotencyKey(key); msg != "" {
		return req, "", msg, http.StatusBadRequest
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, "", fmt.Sprintf("request body over %d bytes", MaxRequestBody), http.StatusRequestEntityTooLarge
		}
		return req, "", "request body: " + err.Error(), http.StatusBadRequest
	}
	if !utf8.Valid(body) {
		return req, "", fmt.Sprintf("request body: not valid UTF-8 at byte %d", invalidUTF8At(body)), http.StatusBadRequest
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, "", "request body: " + describeJSONError(err) + `; want {"type": "<job type>", "payload": {...}}`, http.StatusBadRequest
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, "", "request body: want one JSON object, found more after it", http.StatusBadRequest
	}
	types := w.deps.Types
	switch {
	case req.Type == "":
		return req, "", `"type" is missing; want one of ` + strings.Join(types.Types(), ", "), http.StatusBadRequest
	case !types.Has(req.Type):
		return req, "", fmt.Sprintf("unknown job type %q; want one of %s", req.Type, strings.Join(types.Types(), ", ")), http.StatusBadRequest
	}
	if len(req.Payload) == 0 || string(req.Payload) == "null" {
		req.Payload = json.RawMessage("{}")
	}
	if err := types.Validate(req.Type, req.Payload); err != nil {
		return req, "", fmt.Sprintf("job type %q: %v", req.Type, err), http.StatusBadRequest
	}
	return req, key, "", 0
}

// checkIdempotencyKey returns why key is not allowed, or "".
func checkIdempotencyKey(key string) string {
	if len(key) > 255 {
		return fmt.Sprintf("%s of %d bytes: want at most 255", IdempotencyHeader, len(key))
	}
	for _, c := range []byte(key) {
		if c < 0x21 || c > 0x7e {
			return fmt.Sprintf("%s %q: want printable ASCII without spaces (a UUID, say)", IdempotencyHeader, key)
		}
	}
	return ""
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// refuse answers code with msg, counting the refusal by reason.
func (w *Web) refuse(rw http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	w.deps.Metrics.Rejected(w.Name(), reason)
	writeError(rw, code, msg)
}

// answerUnknown answers 503 "unknown" for a job the bot cannot tell is
// safely queued: it counts the refusal as "unknown" and names the job id
// to look up, in Location and in the body, with msg as the error.
func (w *Web) answerUnknown(rw http.ResponseWriter, id, msg string) {
	w.deps.Metrics.Rejected(w.Name(), "unknown")
	rw.Header().Set("Location", "/api/jobs/"+id)
	writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"id": id, "status": "unknown", "error": msg})
}

// redisContext bounds the Redis calls of one request.
func (w *Web) redisContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cmp.Or(w.deps.Timeout, DefaultRequestTimeout))
}

func (w *Web) get(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := w.redisContext(r.Context())
	defer cancel()
	info, err := w.deps.Queue.Get(ctx, id)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		writeError(rw, http.StatusNotFound, fmt.Sprintf("no job %q (never queued, or its record expired)", id))
	case err != nil:
		w.deps.Logger.ErrorContext(r.Context(), "job lookup failed", "job", id, "error", err)
		writeError(rw, http.StatusServiceUnavailable, "the job store did not answer; try again")
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
