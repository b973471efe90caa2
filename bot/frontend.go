package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

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
}

// Metrics are the bot's own Prometheus metrics.
type Metrics struct {
	submitted *prometheus.CounterVec
	requests  *prometheus.CounterVec
}

// NewMetrics registers the bot's metrics on reg: bot_jobs_submitted_total
// by type and frontend, bot_frontend_requests_total by frontend and HTTP
// status code, and bot_info.
func NewMetrics(reg prometheus.Registerer, info prometheus.Labels) (*Metrics, error) {
	m := &Metrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bot_jobs_submitted_total", Help: "Jobs the bot submitted to the queue, by job type and frontend.",
		}, []string{"type", "frontend"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bot_frontend_requests_total", Help: "Requests the frontends answered, by frontend and HTTP status code.",
		}, []string{"frontend", "code"}),
	}
	infoGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "bot_info", Help: "Identity of this bot process; always 1.", ConstLabels: info})
	infoGauge.Set(1)
	for _, c := range []prometheus.Collector{m.submitted, m.requests, infoGauge} {
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
