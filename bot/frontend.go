package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// Frontend is one way requests reach the bot.
type Frontend interface {
	// Name is the frontend's service name, the service field of its logs
	// and the frontend label of the bot's metrics.
	Name() string
	// Mount registers the frontend's HTTP routes, if it has any; the
	// bot serves them on its monitoring port. protected routes need the
	// bearer token when one is configured.
	Mount(handle func(pattern string, h http.Handler, protected bool))
	// Run serves the frontend until ctx is done (a chat frontend's
	// connection loop); frontends with only HTTP routes return at once.
	Run(ctx context.Context) error
}

// Deps is what a frontend gets from the bot.
type Deps struct {
	// Name is the frontend's service name, as given to Bot.Deps.
	Name  string
	Queue *jobs.Queue
	// Types are the job types the bot accepts (a *jobs.Catalog or a
	// *jobs.Mux): Validate checks a payload before it is queued.
	Types interface {
		Has(typ string) bool
		Types() []string
		Validate(typ string, payload json.RawMessage) error
	}
	Metrics *Metrics
	// Logger logs under the frontend's own service name.
	Logger *slog.Logger
	// Redis is the bot's Redis, where the chat frontends keep what every
	// replica must share: the replies owed, the users' rates, the updates
	// already handled.
	Redis redis.UniversalClient
	// Chat configures what the chat frontends share (NewChat).
	Chat ChatOptions
	// Timeout bounds the Redis calls of one request or message; zero
	// means DefaultRequestTimeout.
	Timeout time.Duration
}

// Metrics are the bot's own Prometheus metrics. They are safe for
// concurrent use.
type Metrics struct {
	submitted *prometheus.CounterVec
	requests  *prometheus.CounterVec
	messages  *prometheus.CounterVec
	limited   *prometheus.CounterVec
	finished  *prometheus.CounterVec
	replies   *prometheus.CounterVec
	rejected  *prometheus.CounterVec
}

// NewMetrics registers the bot's metrics on reg: bot_jobs_submitted_total
// by type and frontend, bot_frontend_requests_total by frontend and HTTP
// status code, the chat frontends' bot_frontend_messages_total (by
// command), bot_frontend_rate_limited_total, bot_frontend_jobs_total (the
// jobs a frontend started that ended, by status) and
// bot_frontend_replies_total (by result), and bot_info.
func NewMetrics(reg prometheus.Registerer, info prometheus.Labels) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		submitted: counter("bot_jobs_submitted_total", "Jobs the bot submitted to the queue, by job type and frontend.", "type", "frontend"),
		requests:  counter("bot_frontend_requests_total", "Requests the frontends answered, by frontend and HTTP status code.", "frontend", "code"),
		messages:  counter("bot_frontend_messages_total", "Chat messages the frontends received, by frontend and command.", "frontend", "command"),
		limited:   counter("bot_frontend_rate_limited_total", "Chat messages refused because their user was over the rate limit, by frontend.", "frontend"),
		finished: counter("bot_frontend_jobs_total",
			"Jobs started from a chat that ended, by frontend and final status (succeeded, failed, or expired when its record was gone).", "frontend", "status"),
		replies: counter("bot_frontend_replies_total", "Replies the chat frontends sent, by frontend and result (sent, failed).", "frontend", "result"),
		rejected: counter("bot_jobs_rejected_total",
			"Job submissions not queued, by frontend and reason (bad_request, backlog_full, redis_error; unknown: Redis did not answer in time, the job may be queued).", "frontend", "reason"),
	}
	infoGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "bot_info", Help: "Identity of this bot process; always 1.", ConstLabels: info})
	infoGauge.Set(1)
	for _, c := range []prometheus.Collector{m.submitted, m.requests, m.messages, m.limited, m.finished, m.replies, m.rejected, infoGauge} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Submitted counts one job submitted by a frontend.
func (m *Metrics) Submitted(typ, frontend string) { m.submitted.WithLabelValues(typ, frontend).Inc() }

// Request counts one answered request.
func (m *Metrics) Request(frontend string, code int) {
	m.requests.WithLabelValues(frontend, strconv.Itoa(code)).Inc()
}

// Rejected counts one submission not queued (or not known to be), by
// reason.
func (m *Metrics) Rejected(frontend, reason string) {
	m.rejected.WithLabelValues(frontend, reason).Inc()
}

// Message counts one chat message received, by its command ("status",
// "run", ... "unknown").
func (m *Metrics) Message(frontend, command string) {
	m.messages.WithLabelValues(frontend, command).Inc()
}

// RateLimited counts one chat message refused by the rate limit.
func (m *Metrics) RateLimited(frontend string) { m.limited.WithLabelValues(frontend).Inc() }

// JobEnded counts one job started from frontend that ended with status.
func (m *Metrics) JobEnded(frontend, status string) {
	m.finished.WithLabelValues(frontend, status).Inc()
}

// Reply counts one reply a chat frontend sent (err nil) or failed to send.
func (m *Metrics) Reply(frontend string, err error) {
	result := "sent"
	if err != nil {
		result = "failed"
	}
	m.replies.WithLabelValues(frontend, result).Inc()
}

// CountRequests wraps h so that every answered request is counted in
// bot_frontend_requests_total under frontend.
func (m *Metrics) CountRequests(frontend string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		m.Request(frontend, sw.code)
	})
}

// SubmittedCounter returns the counter behind Submitted, for tests.
func (m *Metrics) SubmittedCounter(typ, frontend string) prometheus.Counter {
	return m.submitted.WithLabelValues(typ, frontend)
}

// RejectedCounter returns the counter behind Rejected, for tests.
func (m *Metrics) RejectedCounter(frontend, reason string) prometheus.Counter {
	return m.rejected.WithLabelValues(frontend, reason)
}

// RequestsCounter returns the counter behind Request, for tests and
// dashboards that read it directly.
func (m *Metrics) RequestsCounter(frontend string, code int) prometheus.Counter {
	return m.requests.WithLabelValues(frontend, strconv.Itoa(code))
}

// FrontendLogger returns the logger a frontend logs with: the bot's, with
// the frontend's service name in place of "bot".
func FrontendLogger(base *slog.Logger, name string) *slog.Logger {
	return base.With(logging.KeyService, name)
}
