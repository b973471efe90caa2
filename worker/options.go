package worker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

// DefaultShutdownGrace is how long a stopping worker gives its running jobs
// when Options.ShutdownGrace is zero (SHUTDOWN_GRACE).
const DefaultShutdownGrace = 30 * time.Second

// Options configure a Worker. The zero value of every field is its
// default, so Options{} is a worker of the built-in job types on the local
// Redis, listening on :9200. FromEnv fills them from the environment.
type Options struct {
	// ID is the worker's id (WORKER_ID). Default: "worker-<hostname>" in a
	// container, "worker-<hostname>-<pid>" elsewhere.
	ID string
	// Redis is the client to use; the Worker does not close it. When nil,
	// the Worker opens RedisURL (REDIS_URL, default
	// redis://localhost:6379/0) and closes it when Run returns.
	Redis    redis.UniversalClient
	RedisURL string
	// Mux holds the job handlers. Nil means the built-in types only
	// (jobs.Builtins); to run types of your own, register them on a Mux,
	// with the built-ins beside them or not.
	Mux *jobs.Mux
	// FetchAllow opens destinations the built-in http.fetch refuses by
	// default (loopback, private, link-local and metadata addresses):
	// host names, IPs or CIDRs (HTTP_FETCH_ALLOW). It applies when Mux is
	// nil; a Mux of your own passes jobs.BuiltinOptions itself.
	FetchAllow []string
	// Queue is the queue's name (JOB_QUEUE). Default jobs.DefaultQueue.
	Queue string
	// Concurrency is how many jobs run at once (WORKER_CONCURRENCY).
	// Default 1.
	Concurrency int
	// MaxAttempts (JOB_MAX_ATTEMPTS), RetryBackoff (JOB_RETRY_BACKOFF) and
	// VisibilityTimeout (JOB_VISIBILITY_TIMEOUT) are the queue's; the
	// defaults are jobs.ConsumerOptions'.
	MaxAttempts       int
	RetryBackoff      time.Duration
	VisibilityTimeout time.Duration
	// HeartbeatInterval (HEARTBEAT_INTERVAL), HeartbeatTTL (HEARTBEAT_TTL)
	// and HeartbeatStreamMaxLen (HEARTBEAT_STREAM_MAXLEN) are the
	// heartbeat's; the defaults are heartbeat.Options'.
	HeartbeatInterval     time.Duration
	HeartbeatTTL          time.Duration
	HeartbeatStreamMaxLen int64
	// ShutdownGrace is how long running jobs get to finish once Run's
	// context ends (SHUTDOWN_GRACE). Default DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Addr is where /health, /livez, /readyz and /metrics listen
	// (METRICS_ADDR:METRICS_PORT). Default monitoring.DefaultAddr; ":0"
	// picks a free port (see URL).
	Addr string
	// AuthToken, when set, guards /metrics and /health
	// (METRICS_AUTH_TOKEN).
	AuthToken string
	// AdvertiseURL is the /metrics URL the heartbeat advertises for
	// discovery (METRICS_ADVERTISE_URL). Default: the listen address, or
	// the host's first non-loopback address.
	AdvertiseURL string
	// Checks are health checks of your own, run beside the built-in
	// "redis" and "heartbeat" ones.
	Checks []monitoring.Check
	// Logger receives the worker's records; nil means slog.Default(). The
	// worker adds service and worker_id to it.
	Logger *slog.Logger
	// Registry receives the worker_* metrics, served on /metrics. Nil
	// means a fresh monitoring.NewRegistry() (with the process and Go
	// collectors).
	Registry *prometheus.Registry
	// Deployment is where the worker runs (hostname, container, env,
	// region); nil means logging.DetectDeployment().
	Deployment *logging.Deployment
	// Version is reported in the heartbeat and worker_info. Default "dev".
	Version string
}

// FromEnv reads the worker's variables (README's configuration table)
// through getenv, os.Getenv when nil. Every variable is validated and every
// bad one is named in the error, with its value and what is allowed; the
// deployment is detected once and kept in Deployment.
func FromEnv(getenv func(string) string) (Options, error) {
	l := config.New(getenv)
	d := logging.DetectDeploymentEnv(getenv)
	p := l.Process()
	j := l.Jobs()
	o := Options{
		ID:                l.WorkerID(d),
		RedisURL:          p.RedisURL,
		Queue:             j.Queue,
		MaxAttempts:       j.MaxAttempts,
		RetryBackoff:      j.RetryBackoff,
		VisibilityTimeout: j.VisibilityTimeout,
		Concurrency:       l.Int("WORKER_CONCURRENCY", 1, 1, 1024),
		HeartbeatInterval: l.Seconds("HEARTBEAT_INTERVAL", heartbeat.DefaultInterval, heartbeat.MinInterval, time.Hour),
		ShutdownGrace:     l.Seconds("SHUTDOWN_GRACE", DefaultShutdownGrace, 0, time.Hour),
		Addr:              p.MetricsAddr,
		AuthToken:         p.AuthToken,
		AdvertiseURL:      p.AdvertiseURL,
		Deployment:        &d,
	}
	o.HeartbeatTTL = 3 * o.HeartbeatInterval
	if l.Set("HEARTBEAT_TTL") {
		o.HeartbeatTTL = l.Seconds("HEARTBEAT_TTL", o.HeartbeatTTL, time.Second, config.MaxSeconds)
		if o.HeartbeatTTL <= o.HeartbeatInterval {
			l.Bad("HEARTBEAT_TTL", l.String("HEARTBEAT_TTL", ""), fmt.Sprintf("more seconds than HEARTBEAT_INTERVAL (%g), or the hash expires between beats", o.HeartbeatInterval.Seconds()))
		}
	}
	if v := l.String("HTTP_FETCH_ALLOW", ""); v != "" {
		allow, err := jobs.ParseFetchAllow(v)
		if err != nil {
			l.Fail(err)
		}
		o.FetchAllow = allow
	}
	o.HeartbeatStreamMaxLen = int64(l.Int("HEARTBEAT_STREAM_MAXLEN", heartbeat.DefaultStreamMaxLen, 1, 1<<31-1))
	return o, l.Err()
}
