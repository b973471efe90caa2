// Package config reads and validates the environment of botfleet's
// processes (bot, worker). Every variable is checked, and every bad one is
// reported at once by name, with its value (secrets masked) and what is
// allowed.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging"
)

// DefaultRedisURL is where botfleet looks for Redis when REDIS_URL is unset.
const DefaultRedisURL = "redis://localhost:6379/0"

// Process is the configuration every botfleet process shares.
type Process struct {
	// RedisURL is REDIS_URL, as given (it may hold a password: never log it;
	// logging.RedactString masks it). Redis is the parsed form.
	RedisURL string
	Redis    *redis.Options
	// MetricsAddr is the listen address, METRICS_ADDR:METRICS_PORT
	// (default ":9200", all interfaces).
	MetricsAddr string
	MetricsPort int
	// AuthToken is METRICS_AUTH_TOKEN: when set, /metrics, /health and the
	// APIs require "Authorization: Bearer <token>".
	AuthToken string
	// AdvertiseURL is METRICS_ADVERTISE_URL, the /metrics URL others
	// (Prometheus) use; empty means derive it from the host's address.
	AdvertiseURL string
	// ShutdownGrace is SHUTDOWN_GRACE (default 30s): how long a stopping
	// process waits for running work.
	ShutdownGrace time.Duration
}

// Worker is the configuration of `botfleet worker`.
type Worker struct {
	Process
	ID                string        // WORKER_ID; default from the hostname
	HeartbeatInterval time.Duration // HEARTBEAT_INTERVAL in seconds, default 30
	HeartbeatTTL      time.Duration // HEARTBEAT_TTL in seconds, default 3 x interval
	StreamMaxLen      int64         // HEARTBEAT_STREAM_MAXLEN, default 10000
	Concurrency       int           // WORKER_CONCURRENCY, default 1
	Jobs
}

// Jobs is the job queue's configuration, shared by the bot and workers.
type Jobs struct {
	Queue             string        // JOB_QUEUE, default "default"
	MaxAttempts       int           // JOB_MAX_ATTEMPTS, default 3: runs of a failing job before it is dead-lettered
	RetryBackoff      time.Duration // JOB_RETRY_BACKOFF in seconds, default 1, doubling per attempt
	VisibilityTimeout time.Duration // JOB_VISIBILITY_TIMEOUT in seconds, default 30: a dead worker's job is taken over after this
}

// Bot is the configuration of `botfleet bot`.
type Bot struct {
	Process
	Jobs
}

// loader accumulates errors so that one run reports every bad variable.
type loader struct {
	getenv func(string) string
	errs   []error
}

func (l *loader) bad(name, value, want string) {
	l.errs = append(l.errs, fmt.Errorf("%s=%q: want %s", name, value, want))
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) int(name string, def, min, max int) int {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		l.bad(name, v, fmt.Sprintf("a whole number from %d to %d", min, max))
		return def
	}
	return n
}

// seconds reads a number of seconds, decimals allowed ("30", "1.5"); a Go
// duration ("1m30s") is accepted too.
func (l *loader) seconds(name string, def time.Duration, min time.Duration) time.Duration {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		return def
	}
	d, err := ParseSeconds(v)
	if err != nil || d < min {
		l.bad(name, v, fmt.Sprintf("a number of seconds of at least %g (decimals allowed, e.g. 30 or 1.5)", min.Seconds()))
		return def
	}
	return d
}

// ParseSeconds reads "30", "1.5" (seconds) or a Go duration such as "1m30s".
func ParseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || f > 1e9 {
			return 0, fmt.Errorf("%q out of range", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

func (l *loader) process() Process {
	var p Process
	var err error
	p.RedisURL, p.Redis, err = LoadRedis(l.getenv)
	if err != nil {
		l.errs = append(l.errs, err)
	}
	p.MetricsPort = l.int("METRICS_PORT", 9200, 0, 65535)
	host := l.str("METRICS_ADDR", "")
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		if ip := net.ParseIP(host); ip == nil {
			l.bad("METRICS_ADDR", host, "a host name or IP address without a port (the port is METRICS_PORT)")
		} else {
			host = "[" + host + "]"
		}
	}
	p.MetricsAddr = host + ":" + strconv.Itoa(p.MetricsPort)
	p.AuthToken = strings.TrimSpace(l.getenv("METRICS_AUTH_TOKEN"))
	if v := l.str("METRICS_ADVERTISE_URL", ""); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.bad("METRICS_ADVERTISE_URL", v, "an http:// or https:// URL such as http://10.0.0.5:9200/metrics")
		} else {
			if u.Path == "" || u.Path == "/" {
				u.Path = "/metrics"
			}
			p.AdvertiseURL = u.String()
		}
	}
	p.ShutdownGrace = l.seconds("SHUTDOWN_GRACE", 30*time.Second, 0)
	return p
}

// LoadWorker reads the worker's variables through getenv (os.Getenv when nil).
func LoadWorker(getenv func(string) string) (Worker, error) {
	l := &loader{getenv: orEnv(getenv)}
	w := Worker{Process: l.process()}
	w.ID = l.str("WORKER_ID", "")
	if w.ID == "" {
		w.ID = DefaultWorkerID()
	} else if !workerIDPattern.MatchString(w.ID) {
		l.bad("WORKER_ID", w.ID, "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	}
	w.HeartbeatInterval = l.seconds("HEARTBEAT_INTERVAL", 30*time.Second, 100*time.Millisecond)
	w.HeartbeatTTL = 3 * w.HeartbeatInterval
	if v := strings.TrimSpace(l.getenv("HEARTBEAT_TTL")); v != "" {
		w.HeartbeatTTL = l.seconds("HEARTBEAT_TTL", w.HeartbeatTTL, time.Second)
		if w.HeartbeatTTL <= w.HeartbeatInterval {
			l.bad("HEARTBEAT_TTL", v, fmt.Sprintf("more seconds than HEARTBEAT_INTERVAL (%g), or the hash expires between beats", w.HeartbeatInterval.Seconds()))
		}
	}
	w.StreamMaxLen = int64(l.int("HEARTBEAT_STREAM_MAXLEN", 10000, 1, 1<<31-1))
	w.Concurrency = l.int("WORKER_CONCURRENCY", 1, 1, 1024)
	w.Jobs = l.jobs()
	return w, errors.Join(l.errs...)
}

// LoadBot reads the bot's variables through getenv (os.Getenv when nil).
func LoadBot(getenv func(string) string) (Bot, error) {
	l := &loader{getenv: orEnv(getenv)}
	b := Bot{Process: l.process()}
	b.Jobs = l.jobs()
	return b, errors.Join(l.errs...)
}

var queuePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (l *loader) jobs() Jobs {
	return Jobs{
		Queue:             l.queue(),
		MaxAttempts:       l.int("JOB_MAX_ATTEMPTS", 3, 1, 100),
		RetryBackoff:      l.seconds("JOB_RETRY_BACKOFF", time.Second, 0),
		VisibilityTimeout: l.seconds("JOB_VISIBILITY_TIMEOUT", 30*time.Second, time.Second),
	}
}

func (l *loader) queue() string {
	q := l.str("JOB_QUEUE", "default")
	if !queuePattern.MatchString(q) {
		l.bad("JOB_QUEUE", q, "1 to 64 letters, digits, '.', '_' or '-'")
		return "default"
	}
	return q
}

func orEnv(getenv func(string) string) func(string) string {
	if getenv == nil {
		return os.Getenv
	}
	return getenv
}

// DefaultWorkerID derives a worker id from the host: "worker-<hostname>" in
// a container, where each replica has its own hostname (so
// `docker compose --scale worker=5` gives five ids), and
// "worker-<hostname>-<pid>" elsewhere, where several workers share a host.
func DefaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = sanitizeID(host)
	if logging.DetectDeployment().ContainerID != "" {
		return "worker-" + host
	}
	return fmt.Sprintf("worker-%s-%d", host, os.Getpid())
}

func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

// AdvertisedMetricsURL returns the URL at which this process's /metrics can
// be reached from elsewhere: METRICS_ADVERTISE_URL when set; else the
// listen address when it names a host; else the host's first non-loopback
// address (what another container or Prometheus can reach), falling back to
// the hostname.
func (p Process) AdvertisedMetricsURL(boundPort int) string {
	if p.AdvertiseURL != "" {
		return p.AdvertiseURL
	}
	host, _, _ := net.SplitHostPort(p.MetricsAddr)
	if host == "" || host == "0.0.0.0" || host == "::" || host == "[::]" {
		host = outboundHost()
	}
	return "http://" + net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(boundPort)) + "/metrics"
}

func outboundHost() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "127.0.0.1"
}

// LoadRedis reads only REDIS_URL, for commands that just read the fleet.
func LoadRedis(getenv func(string) string) (string, *redis.Options, error) {
	l := &loader{getenv: orEnv(getenv)}
	p := Process{RedisURL: l.str("REDIS_URL", DefaultRedisURL)}
	opts, err := redis.ParseURL(p.RedisURL)
	if err != nil {
		return p.RedisURL, nil, fmt.Errorf("REDIS_URL=%q: want redis://[:password@]host:port/db or rediss:// for TLS (%s)",
			logging.RedactString(p.RedisURL), logging.RedactString(err.Error()))
	}
	return p.RedisURL, opts, nil
}
