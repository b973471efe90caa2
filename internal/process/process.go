// Package process is what every long-running botfleet process shares, the
// worker's and the bot's composition alike: a Redis client, the state
// machine, the resource sampler, a metrics registry, the health monitor and
// the endpoint server, opened and closed in one order.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/config"
	"github.com/botfleet/botfleet/internal/wire"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

// CloseTimeout bounds the server's graceful close.
const CloseTimeout = 5 * time.Second

// Options configure Open.
type Options struct {
	Service  string // the /health service field
	WorkerID string // the state machine's id; "" for the bot
	// Redis is the client the "redis" check pings; required.
	Redis redis.UniversalClient
	// Addr and AuthToken are the server's; see monitoring.ServerOptions.
	Addr      string
	AuthToken string
	// Registry receives the process's metrics; nil means a fresh
	// monitoring.NewRegistry().
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Checks run after the built-in "redis" check.
	Checks []monitoring.Check
	// Mount adds routes to the server before it listens.
	Mount func(*monitoring.Server) error
}

// Process holds a running process's parts. Close releases them.
type Process struct {
	Logger   *slog.Logger
	Redis    redis.UniversalClient
	State    *monitoring.Worker
	Sampler  *monitoring.Sampler
	Registry *prometheus.Registry
	Monitor  *monitoring.Monitor
	Server   *monitoring.Server
}

// New starts the sampler and creates the state machine and registry; the
// server is created by Listen, once the caller has registered what the
// checks need.
func New(ctx context.Context, o Options) *Process {
	reg := o.Registry
	if reg == nil {
		reg = monitoring.NewRegistry()
	}
	p := &Process{
		Logger: o.Logger, Redis: o.Redis, Registry: reg,
		State: monitoring.NewWorker(o.WorkerID, nil), Sampler: monitoring.NewSampler(0),
	}
	p.Sampler.Start(ctx)
	return p
}

// Listen creates the monitor (the "redis" check, then o.Checks) and the
// server, mounts o.Mount's routes and listens at once, so a taken port is
// an error here. The monitor starts with StartMonitor.
func (p *Process) Listen(o Options) error {
	rdb := p.Redis
	checks := append([]monitoring.Check{{Name: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}}, o.Checks...)
	p.Monitor = monitoring.NewMonitor(monitoring.MonitorOptions{Service: o.Service, Worker: p.State, Sampler: p.Sampler, Logger: p.Logger, Checks: checks})
	p.Server = monitoring.NewServer(monitoring.ServerOptions{Addr: o.Addr, AuthToken: o.AuthToken,
		Gatherer: p.Registry, Monitor: p.Monitor, Logger: p.Logger})
	if o.Mount != nil {
		if err := o.Mount(p.Server); err != nil {
			return err
		}
	}
	if err := p.Server.Open(); err != nil {
		return fmt.Errorf("listen on %s (METRICS_ADDR, METRICS_PORT): %w", o.Addr, err)
	}
	return nil
}

// StartMonitor runs the health checks once, then in the background.
func (p *Process) StartMonitor(ctx context.Context) { p.Monitor.Start(ctx) }

// Port is the port the server listens on; 0 before Listen.
func (p *Process) Port() int {
	if p.Server == nil {
		return 0
	}
	u := p.Server.URL()
	i := strings.LastIndexByte(u, ':')
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimRight(u[i+1:], "/"))
	return n
}

// CloseServer stops serving, bounded by CloseTimeout.
func (p *Process) CloseServer() error {
	if p.Server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
	defer cancel()
	if err := p.Server.Close(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("close endpoints: %w", err)
	}
	return nil
}

// Close stops the monitor and the sampler; the server is closed by the
// caller, in its own order, with CloseServer.
func (p *Process) Close() {
	if p.Monitor != nil {
		p.Monitor.Stop()
	}
	p.Sampler.Stop()
}

// Redis returns client when it is not nil (the caller keeps it), or a new
// client for url (REDIS_URL's forms, config.ParseRedisURL) that the caller
// must close (owned is true): one server's client, for a Sentinel URL
// go-redis's failover client, which follows the master across a failover,
// or for a Cluster URL its cluster client (config.Redis.NewClient).
// Every command honours its context's deadline, so a slow Redis never
// holds a beat or a request past it.
func Redis(client redis.UniversalClient, url string) (rdb redis.UniversalClient, owned bool, err error) {
	if client != nil {
		return client, false, nil
	}
	if url == "" {
		url = config.DefaultRedisURL
	}
	r, err := config.ParseRedisURL(url)
	if err != nil {
		return nil, false, err
	}
	return r.NewClient(), true, nil
}

// ErrRedisRefused is wrapped by CheckRedis's error: Redis answered, and
// refused the connection's settings (a database index it does not have,
// a wrong password), which no retry will mend.
var ErrRedisRefused = errors.New("redis refused the connection's settings")

// checkTimeout bounds CheckRedis's PING.
const checkTimeout = 3 * time.Second

// CheckRedis pings Redis once at start. Redis being down or slow is not an
// error (the process runs degraded and retries); Redis refusing the
// settings is, wrapping ErrRedisRefused and naming REDIS_URL.
func CheckRedis(ctx context.Context, rdb redis.UniversalClient) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err := rdb.Ping(ctx).Err()
	if err == nil || !wire.IsReplyError(err) {
		return nil
	}
	for _, transient := range []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.HasPrefix(err.Error(), transient) {
			return nil
		}
	}
	return fmt.Errorf("REDIS_URL: %w: %s", ErrRedisRefused, logging.RedactString(err.Error()))
}
