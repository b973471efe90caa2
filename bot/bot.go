// Package bot is the composition of botfleet's bot service: it takes
// requests from pluggable frontends, each logging under its own service
// name (the design's discord_bot, telegram_bot, web_frontend,
// sms_gateway), hands them to the worker fleet as jobs, and serves the
// fleet view beside them.
//
//	opts, err := bot.FromEnv(nil)  // README's variables, validated
//	b, err := bot.New(opts)        // the web frontend is on by default
//	b.Add(myFrontend(b.Deps("sms_gateway")))
//	err = b.Run(ctx)
//
// A running bot serves, on its port: the frontends' routes (the web
// frontend's POST /api/jobs and GET /api/jobs/{id}), the fleet API and
// Prometheus discovery under /api/fleet, the dashboard at /, /health,
// /livez, /readyz and /metrics (bot_*, jobs_queue_* and fleet_*).
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/internal/process"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

// ErrRunning is returned by Run on a Bot that was already run, and by Add
// once it runs.
var ErrRunning = errors.New("bot: already running")

// Options configure a Bot. The zero value of every field is its default:
// Options{} is a bot with the web frontend, the built-in job types and the
// fleet view, on the local Redis, listening on :9200. FromEnv fills them
// from the environment.
type Options struct {
	// Redis is the client to use; the Bot does not close it. When nil,
	// the Bot opens RedisURL (REDIS_URL, default redis://localhost:6379/0)
	// and closes it when Run returns.
	Redis    redis.UniversalClient
	RedisURL string
	// Queue (JOB_QUEUE) and MaxAttempts (JOB_MAX_ATTEMPTS) are the queue's
	// jobs go to; the defaults are jobs.QueueOptions'.
	Queue       string
	MaxAttempts int
	// Types are the job types the bot knows itself, with their payload
	// validators, run before a job is accepted. Nil means the built-in
	// types. Beside them, the bot accepts every type the queue's live
	// workers advertise (jobs.Catalog), whose payloads their workers check.
	Types *jobs.Mux
	// Service is the bot's service name in its logs and /health. Default
	// "bot".
	Service string
	// NoWeb leaves the web frontend (the job API) out.
	NoWeb bool
	// NoFleetView leaves the fleet API, discovery, dashboard and fleet_*
	// metrics out.
	NoFleetView bool
	// NoAdmin leaves the admin API (/api/admin) out.
	NoAdmin bool
	// Addr is where the routes listen (METRICS_ADDR:METRICS_PORT).
	// Default monitoring.DefaultAddr; ":0" picks a free port (see URL).
	Addr string
	// AuthToken, when set, guards /metrics, /health and the read APIs:
	// the fleet view, GET /api/jobs/{id} and the admin API's GET routes
	// (METRICS_AUTH_TOKEN, the read token). The dashboard page and
	// /livez, /readyz stay open.
	AuthToken string
	// SubmitToken, when set, guards POST /api/jobs (SUBMIT_TOKEN); the
	// read token does not open it. Without it the job API is open, which
	// New allows only on a loopback Addr.
	SubmitToken string
	// AdminToken, when set, guards the admin API's actions and opens its
	// views too (ADMIN_TOKEN). Without it the actions are open, which New
	// allows only on a loopback Addr.
	AdminToken string
	// GrafanaURL (GRAFANA_URL) makes a job's detail link to its log lines
	// in Grafana Explore.
	GrafanaURL string
	// Checks are health checks of your own, beside the built-in "redis".
	Checks []monitoring.Check
	// Logger receives the bot's records; nil means slog.Default(). The bot
	// logs as service "bot", each frontend under its own name.
	Logger *slog.Logger
	// Registry receives the metrics served on /metrics. Nil means a fresh
	// monitoring.NewRegistry().
	Registry *prometheus.Registry
	// Deployment is where the bot runs; nil means
	// logging.DetectDeployment().
	Deployment *logging.Deployment
	// Version is reported in bot_info. Default "dev".
	Version string
	// Chat configures what the chat frontends share: the per-user rate
	// limit, the payload cap, how replies are polled (CHAT_* variables).
	Chat ChatOptions
	// RequestTimeout bounds the Redis calls of one request (REDIS_TIMEOUT):
	// a hung Redis yields a prompt 503, never a hung client. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBacklog is the most jobs the queue holds waiting or running
	// (JOB_MAX_BACKLOG); past it a submission is refused with 429 before
	// anything is written. Default jobs.DefaultMaxBacklog.
	MaxBacklog int64
	// Replicas makes a submission wait for Redis replicas to have the job
	// before it is answered 202 (REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT);
	// see jobs.Replicas. Default: none.
	Replicas jobs.Replicas
	// MaxStreams caps the fleet view's open event streams
	// (FLEET_MAX_STREAMS); default fleet.DefaultMaxStreams.
	MaxStreams int
}

// DefaultRequestTimeout is Options.RequestTimeout's default.
const DefaultRequestTimeout = 2 * time.Second

// FromEnv reads the bot's variables (README's configuration table)
// through getenv, os.Getenv when nil. Every bad variable is named in the
// error with its value and what is allowed.
func FromEnv(getenv func(string) string) (Options, error) {
	l := config.New(getenv)
	d := logging.DetectDeploymentEnv(getenv)
	p := l.Process()
	j := l.Jobs()
	return Options{
		RedisURL: p.RedisURL, Queue: j.Queue, MaxAttempts: j.MaxAttempts,
		Addr: p.MetricsAddr, AuthToken: p.AuthToken, Deployment: &d, Chat: chatFromEnv(l),
		SubmitToken: l.String("SUBMIT_TOKEN", ""), AdminToken: l.String("ADMIN_TOKEN", ""), GrafanaURL: l.String("GRAFANA_URL", ""),
		RequestTimeout: l.Seconds("REDIS_TIMEOUT", DefaultRequestTimeout, 100*time.Millisecond, time.Minute),
		MaxBacklog:     int64(l.Int("JOB_MAX_BACKLOG", jobs.DefaultMaxBacklog, 1, 1<<31-1)),
		MaxStreams:     l.Int("FLEET_MAX_STREAMS", fleet.DefaultMaxStreams, 1, 10000),
		Replicas:       j.Replicas,
	}, l.Err()
}

// Bot is the bot service. Create it with New, Add frontends, and call Run
// once. Its methods are safe for concurrent use.
type Bot struct {
	o        Options
	identity heartbeat.Identity
	logger   *slog.Logger
	rdb      redis.UniversalClient
	owned    bool // rdb was opened by New and is closed by Run
	queue    *jobs.Queue
	types    *jobs.Catalog
	metrics  *Metrics
	admin    *Admin

	mu        sync.Mutex
	running   bool
	frontends []Frontend
	url       string
	started   chan struct{}
}

// New checks o and returns a Bot with the web frontend added (unless
// o.NoWeb); nothing listens before Run. An error names what is wrong.
func New(o Options) (*Bot, error) {
	if o.Types == nil {
		o.Types = jobs.NewMux()
		jobs.Builtins(o.Types, nil)
	}
	if o.Deployment == nil {
		d := logging.DetectDeployment()
		o.Deployment = &d
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Service == "" {
		o.Service = "bot"
	}
	if o.Addr == "" {
		o.Addr = monitoring.DefaultAddr
	}
	if err := checkExposure(o); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = monitoring.NewRegistry()
	}
	rdb, owned, err := process.Redis(o.Redis, o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	d := o.Deployment
	id := heartbeat.Identity{Service: o.Service, Hostname: d.Hostname, ContainerID: d.ContainerID,
		DeploymentEnv: d.Env, Region: d.Region, Version: o.Version}
	metrics, err := NewMetrics(o.Registry, prometheus.Labels(id.InfoLabels(runtime.Version())))
	if err != nil {
		closeOwned(rdb, owned)
		return nil, fmt.Errorf("bot: %w", err)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	queue := jobs.NewQueue(rdb, o.Queue, jobs.QueueOptions{MaxAttempts: o.MaxAttempts, MaxBacklog: o.MaxBacklog, Replicas: o.Replicas})
	if err := o.Registry.Register(NewQueueCollector(queue, queue.Name())); err != nil {
		closeOwned(rdb, owned)
		return nil, fmt.Errorf("bot: %w", err)
	}
	admin, err := NewAdmin(rdb, AdminOptions{Logger: o.Logger.With(logging.KeyService, id.Service), Registry: o.Registry, GrafanaURL: o.GrafanaURL})
	if err != nil {
		closeOwned(rdb, owned)
		return nil, fmt.Errorf("bot: %w", err)
	}
	b := &Bot{o: o, identity: id, admin: admin, logger: o.Logger.With(logging.KeyService, id.Service), rdb: rdb, owned: owned,
		queue: queue, types: jobs.NewCatalog(rdb, queue.Name(), o.Types), metrics: metrics, started: make(chan struct{})}
	if !o.NoWeb {
		b.frontends = append(b.frontends, NewWeb(b.Deps("web_frontend")))
	}
	return b, nil
}

func closeOwned(rdb redis.UniversalClient, owned bool) {
	if owned {
		_ = rdb.Close()
	}
}

// Deps returns what a frontend named name gets from the bot: the queue,
// the accepted types, the metrics, a logger logging as service name, the
// bot's Redis and the chat options.
func (b *Bot) Deps(name string) Deps {
	return Deps{Name: name, Queue: b.queue, Types: b.types, Metrics: b.metrics, Logger: FrontendLogger(b.o.Logger, name),
		Redis: b.rdb, Chat: b.o.Chat, Timeout: b.o.RequestTimeout}
}

// Add adds frontends; it must be called before Run. Frontend names must be
// unique.
func (b *Bot) Add(fs ...Frontend) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return ErrRunning
	}
	for _, f := range fs {
		for _, have := range b.frontends {
			if have.Name() == f.Name() {
				return fmt.Errorf("bot: a frontend named %q is already added", f.Name())
			}
		}
		b.frontends = append(b.frontends, f)
	}
	return nil
}

// URL returns the base URL of the bot's routes, such as
// "http://127.0.0.1:9200", once Run listens; "" before.
func (b *Bot) URL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.url
}

// Started is closed once Run listens, or returns with an error before.
func (b *Bot) Started() <-chan struct{} { return b.started }

// Queue returns the queue the bot submits to.
func (b *Bot) Queue() *jobs.Queue { return b.queue }

// Run serves until ctx ends or a frontend's Run fails, then closes the
// endpoints. It returns nil after a stop that ctx asked for.
func (b *Bot) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return ErrRunning
	}
	b.running = true
	frontends := append([]Frontend(nil), b.frontends...)
	b.mu.Unlock()
	startedOnce := sync.OnceFunc(func() { close(b.started) })
	defer startedOnce()
	defer closeOwned(b.rdb, b.owned)
	if err := process.CheckRedis(ctx, b.rdb); err != nil {
		return fmt.Errorf("bot: %w", err)
	}

	p := process.New(ctx, process.Options{Redis: b.rdb, Registry: b.o.Registry, Logger: b.logger})
	defer p.Close()
	err := p.Listen(process.Options{Service: b.o.Service, Addr: b.o.Addr, AuthToken: b.o.AuthToken, Checks: b.o.Checks,
		Mount: func(srv *monitoring.Server) error { return b.mount(srv, frontends) }})
	startedOnce()
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	b.mu.Lock()
	b.url = p.Server.URL()
	b.mu.Unlock()
	p.StartMonitor(ctx)
	_ = p.State.SetState(monitoring.StateIdle)
	url := p.Server.URL()
	b.logger.Info(b.o.Service+" started", "url", url, "queue", b.queue.Name(), "frontends", frontendNames(frontends),
		"dashboard", url+"/", "discovery", url+fleet.APIPrefix+"/targets", "version", b.o.Version)
	runErr := runFrontends(ctx, frontends)
	b.logger.Info(b.o.Service + " stopping")
	_ = p.State.SetState(monitoring.StateStopping)
	if err := p.CloseServer(); err != nil {
		b.logger.Warn("closing the endpoints", "error", err)
	}
	_ = p.State.SetState(monitoring.StateStopped)
	b.logger.Info(b.o.Service + " stopped")
	return runErr
}

// mount adds the frontends' routes, the admin API and the fleet view to
// srv. The job submission route takes the submit token, not the read one.
func (b *Bot) mount(srv *monitoring.Server, frontends []Frontend) error {
	handle := func(pattern string, h http.Handler, protected bool) {
		if pattern == SubmitPattern {
			srv.HandleWith(pattern, h, monitoring.Credential{Name: "SUBMIT_TOKEN", Token: b.o.SubmitToken})
			return
		}
		srv.Handle(pattern, h, protected)
	}
	for _, f := range frontends {
		f.Mount(handle)
	}
	if !b.o.NoAdmin {
		MountAdmin(srv, b.admin, b.o.AuthToken, b.o.AdminToken)
	}
	if b.o.NoFleetView {
		return nil
	}
	return MountFleetView(srv, fleet.NewReader(b.rdb, fleet.Options{MaxStreams: b.o.MaxStreams}), b.o.Registry)
}

// MountFleetView serves the fleet view on srv: the JSON API and Prometheus
// discovery under /api/fleet (protected by the token when one is set),
// the dashboard page at / (open: it fetches the protected API), and the
// fleet_* metrics on reg.
func MountFleetView(srv *monitoring.Server, reader *fleet.Reader, reg prometheus.Registerer) error {
	srv.HandlePrefix(fleet.APIPrefix, fleet.NewHandler(reader), true)
	dash := fleet.DashboardHandler()
	// "/{$}" is the root alone: "/" would swallow every unknown path,
	// which must stay a 404.
	srv.Handle("GET /{$}", dash, false)
	srv.Handle("GET /assets/", dash, false)
	return reg.Register(fleet.NewCollector(reader))
}

// Admin returns the bot's admin actions (the admin API's implementation).
func (b *Bot) Admin() *Admin { return b.admin }

// MountAdmin serves the admin API on srv: its views (GET) to the read
// token or the admin token, its actions only to the admin token; a route
// whose tokens are unset is open.
func MountAdmin(srv *monitoring.Server, a *Admin, readToken, adminToken string) {
	h := NewAdminHandler(a)
	admin := monitoring.Credential{Name: "ADMIN_TOKEN", Token: adminToken}
	read := monitoring.Credential{Name: monitoring.ReadCredential, Token: readToken}
	if adminToken != "" && readToken == "" {
		read = admin // the views are not more open than the actions' token allows
	}
	srv.HandleWith("GET "+AdminPrefix+"/", h, read, admin)
	srv.HandleWith("POST "+AdminPrefix+"/", h, admin)
	srv.HandleWith("DELETE "+AdminPrefix+"/", h, admin)
}

// checkExposure refuses an unauthenticated job or admin API on an
// address other loopback, as Redis's protected mode does, naming the
// variable to set.
func checkExposure(o Options) error {
	if isLoopback(o.Addr) {
		return nil
	}
	var missing []string
	if !o.NoWeb && o.SubmitToken == "" {
		missing = append(missing, "SUBMIT_TOKEN")
	}
	if !o.NoAdmin && o.AdminToken == "" {
		missing = append(missing, "ADMIN_TOKEN")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("bot: %w: listening on %q, not a loopback address, the job API and the admin API need their tokens: set %s (or METRICS_ADDR=127.0.0.1)",
		ErrUnprotected, o.Addr, strings.Join(missing, " and "))
}

// ErrUnprotected is wrapped by New's error when the job or admin API
// would be served without a token on an address other than loopback.
var ErrUnprotected = errors.New("unauthenticated API on a public address")

// isLoopback reports whether addr's host is a loopback address or
// "localhost"; an empty host (every interface) is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runFrontends runs every frontend until ctx ends or one fails, then
// stops the others and waits for all of them: a chat frontend finishes the
// reply it is sending before the endpoints close.
func runFrontends(ctx context.Context, frontends []Frontend) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(frontends))
	var wg sync.WaitGroup
	for _, f := range frontends {
		wg.Go(func() {
			if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("frontend %s: %w", f.Name(), err)
				cancel()
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func frontendNames(fs []Frontend) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name()
	}
	return out
}
