package bot

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/monitoring"
)

// AdminPrefix is the admin API's path prefix.
const AdminPrefix = "/api/admin"

// NewAdminHandler serves the admin API over a (docs/admin.md):
//
//	GET    /api/admin/queues                          every queue's overview
//	POST   /api/admin/queues/{queue}/pause|resume
//	GET    /api/admin/jobs?queue=&status=&type=&since=&limit=&cursor=
//	GET    /api/admin/jobs/{id}                       one job whole
//	POST   /api/admin/jobs/{id}/retry                 a dead job
//	DELETE /api/admin/jobs/{id}                       a dead job
//	POST   /api/admin/dead/retry?queue=&type=&since=  dead jobs by filter
//	POST   /api/admin/dead/purge?queue=&type=&since=
//	POST   /api/admin/workers/{id}/quiet|resume|stop
//
// The caller mounts it and guards it; the credential name an action is
// logged with is monitoring.CredentialName's.
func NewAdminHandler(a *Admin) http.Handler {
	mux := http.NewServeMux()
	h := adminAPI{a}
	mux.HandleFunc("GET "+AdminPrefix+"/queues", h.queues)
	mux.HandleFunc("POST "+AdminPrefix+"/queues/{queue}/{action}", h.queueAction)
	mux.HandleFunc("GET "+AdminPrefix+"/jobs", h.list)
	mux.HandleFunc("GET "+AdminPrefix+"/jobs/{id}", h.job)
	mux.HandleFunc("POST "+AdminPrefix+"/jobs/{id}/retry", h.retry)
	mux.HandleFunc("DELETE "+AdminPrefix+"/jobs/{id}", h.delete)
	mux.HandleFunc("POST "+AdminPrefix+"/dead/{action}", h.dead)
	mux.HandleFunc("POST "+AdminPrefix+"/workers/{id}/{action}", h.worker)
	return mux
}

type adminAPI struct{ a *Admin }

func (h adminAPI) queues(w http.ResponseWriter, r *http.Request) {
	qs, err := h.a.Queues(r.Context())
	reply(w, map[string]any{"queues": qs}, err)
}

func (h adminAPI) queueAction(w http.ResponseWriter, r *http.Request) {
	q, cred := r.PathValue("queue"), monitoring.CredentialName(r)
	var err error
	switch r.PathValue("action") {
	case "pause":
		err = h.a.Pause(r.Context(), cred, q)
	case "resume":
		err = h.a.Resume(r.Context(), cred, q)
	default:
		adminError(w, http.StatusNotFound, "want pause or resume")
		return
	}
	reply(w, map[string]any{"queue": q, "action": r.PathValue("action")}, err)
}

func (h adminAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := jobs.ListOptions{Status: q.Get("status"), Type: q.Get("type"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			adminError(w, http.StatusBadRequest, "limit: want 1 to 1000")
			return
		}
		o.Limit = n
	}
	since, ok := parseSince(w, q.Get("since"))
	if !ok {
		return
	}
	o.Since = since
	page, err := h.a.Jobs(r.Context(), q.Get("queue"), o)
	reply(w, page, err)
}

// parseSince reads since: RFC 3339, Unix seconds, or a duration back from
// now ("1h").
func parseSince(w http.ResponseWriter, v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, true
	}
	if t, err := ParseSince(v, time.Now()); err == nil {
		return t, true
	}
	adminError(w, http.StatusBadRequest, "since: want RFC 3339 time, Unix seconds or a duration such as 1h")
	return time.Time{}, false
}

// ParseSince reads a time filter as the admin API and the CLI take it:
// RFC 3339, Unix seconds, or a duration back from now ("90m", "1h").
func ParseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return time.Time{}, errors.New("since: want RFC 3339 time, Unix seconds or a duration such as 1h")
	}
	return time.UnixMilli(int64(f * 1e3)), nil
}

func (h adminAPI) job(w http.ResponseWriter, r *http.Request) {
	d, err := h.a.Job(r.Context(), r.PathValue("id"))
	reply(w, d, err)
}

func (h adminAPI) retry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.a.Retry(r.Context(), monitoring.CredentialName(r), id)
	reply(w, map[string]any{"id": id, "action": "retry"}, err)
}

func (h adminAPI) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.a.Delete(r.Context(), monitoring.CredentialName(r), id)
	reply(w, map[string]any{"id": id, "action": "delete"}, err)
}

func (h adminAPI) dead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, ok := parseSince(w, q.Get("since"))
	if !ok {
		return
	}
	f := jobs.DeadFilter{Type: q.Get("type"), Since: since}
	cred := monitoring.CredentialName(r)
	var (
		ids []string
		err error
	)
	switch r.PathValue("action") {
	case "retry":
		ids, err = h.a.RetryDead(r.Context(), cred, q.Get("queue"), f)
	case "purge":
		ids, err = h.a.PurgeDead(r.Context(), cred, q.Get("queue"), f)
	default:
		adminError(w, http.StatusNotFound, "want retry or purge")
		return
	}
	if ids == nil {
		ids = []string{}
	}
	reply(w, map[string]any{"action": r.PathValue("action"), "ids": ids, "count": len(ids)}, err)
}

func (h adminAPI) worker(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	switch action {
	case heartbeat.ControlQuiet, heartbeat.ControlResume, heartbeat.ControlStop:
	default:
		adminError(w, http.StatusNotFound, "want quiet, resume or stop")
		return
	}
	err := h.a.ControlWorker(r.Context(), monitoring.CredentialName(r), id, action)
	reply(w, map[string]any{"worker_id": id, "action": action}, err)
}

// reply writes v as JSON, or err with the status it deserves.
func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(v)
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, ErrNoWorker):
		adminError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, jobs.ErrNotDead):
		adminError(w, http.StatusConflict, err.Error())
	case errors.Is(err, jobs.ErrBadListOptions):
		adminError(w, http.StatusBadRequest, err.Error())
	default:
		adminError(w, http.StatusServiceUnavailable, err.Error())
	}
}

func adminError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
