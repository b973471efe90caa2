// Package config reads and validates botfleet's environment variables.
// A Loader checks every variable it is asked for and collects every bad
// one, so a run reports them all at once, each by name, with its value
// (secrets masked) and what is allowed. The defaults are the libraries'
// own (heartbeat, jobs, monitoring); the public worker and bot packages
// build their Options with a Loader (worker.FromEnv, bot.FromEnv).
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
)

// DefaultRedisURL is where botfleet looks for Redis when REDIS_URL is unset.
const DefaultRedisURL = "redis://localhost:6379/0"

// MaxSeconds bounds every duration variable: a day. Longer intervals and
// timeouts are mistakes (HEARTBEAT_INTERVAL=1e9 would keep a killed worker
// "alive" for decades).
const MaxSeconds = 24 * time.Hour

// Process is the configuration every botfleet process shares.
type Process struct {
	// RedisURL is REDIS_URL, as given (it may hold a password: never log it;
	// logging.RedactString masks it). Redis is the parsed form.
	RedisURL string
	Redis    Redis
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
}

// Jobs is the job queue's configuration, shared by the bot and workers.
type Jobs struct {
	Queue             string        // JOB_QUEUE
	MaxAttempts       int           // JOB_MAX_ATTEMPTS: runs of a failing job before it is dead-lettered
	RetryBackoff      time.Duration // JOB_RETRY_BACKOFF in seconds, doubling per attempt
	VisibilityTimeout time.Duration // JOB_VISIBILITY_TIMEOUT in seconds: a dead worker's job is taken over after this
	// Replicas is REDIS_WAIT_REPLICAS and REDIS_WAIT_TIMEOUT: how many
	// replicas a producer waits for before a job counts as queued.
	Replicas jobs.Replicas
}

// Loader reads variables through getenv and accumulates the errors, so
// that one run reports every bad variable. It is not safe for concurrent
// use.
type Loader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Loader reading through getenv (os.Getenv when nil).
func New(getenv func(string) string) *Loader {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Loader{getenv: getenv}
}

// Err returns every error found so far, joined, or nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }

// Bad records that variable name has a value that is not allowed.
func (l *Loader) Bad(name, value, want string) {
	l.errs = append(l.errs, fmt.Errorf("%s=%q: want %s", name, value, want))
}

// Fail records an error that already names its variable.
func (l *Loader) Fail(err error) { l.errs = append(l.errs, err) }

// Set reports whether the variable is set to something other than blanks.
func (l *Loader) Set(name string) bool { return strings.TrimSpace(l.getenv(name)) != "" }

// String returns the variable, trimmed, or def when it is unset.
func (l *Loader) String(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as a whole number from min to max, or def.
func (l *Loader) Int(name string, def, min, max int) int {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		l.Bad(name, v, fmt.Sprintf("a whole number from %d to %d", min, max))
		return def
	}
	return n
}

// Seconds returns the variable as a number of seconds from min to max,
// decimals allowed ("30", "1.5"; a Go duration such as "1m30s" too), or
// def when it is unset.
func (l *Loader) Seconds(name string, def, min, max time.Duration) time.Duration {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		return def
	}
	d, err := ParseSeconds(v)
	if err != nil || d < min || d > max {
		l.Bad(name, v, fmt.Sprintf("a number of seconds from %g to %g (decimals allowed, e.g. 30 or 1.5)", min.Seconds(), max.Seconds()))
		return def
	}
	return d
}

// ParseSeconds reads "30", "1.5" (seconds) or a Go duration such as "1m30s".
func ParseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || f < 0 || f > MaxSeconds.Seconds() {
			return 0, fmt.Errorf("%q out of range", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(v)
}

// Process reads REDIS_URL, METRICS_ADDR, METRICS_PORT, METRICS_AUTH_TOKEN
// and METRICS_ADVERTISE_URL.
func (l *Loader) Process() Process {
	var p Process
	var err error
	p.RedisURL, p.Redis, err = LoadRedis(l.getenv)
	if err != nil {
		l.errs = append(l.errs, err)
	}
	p.MetricsPort = l.Int("METRICS_PORT", monitoring.DefaultPort, 0, 65535)
	host := l.String("METRICS_ADDR", "")
	switch {
	case host == "":
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") && net.ParseIP(host[1:len(host)-1]) != nil:
	case net.ParseIP(host) != nil:
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	case !hostnamePattern.MatchString(host) || allDigitsAndDots(host):
		l.Bad("METRICS_ADDR", host, "an IP address or host name without a port (the port is METRICS_PORT)")
		host = ""
	}
	p.MetricsAddr = host + ":" + strconv.Itoa(p.MetricsPort)
	p.AuthToken = strings.TrimSpace(l.getenv("METRICS_AUTH_TOKEN"))
	if v := l.String("METRICS_ADVERTISE_URL", ""); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.Bad("METRICS_ADVERTISE_URL", v, "an http:// or https:// URL such as http://10.0.0.5:9200/metrics")
		} else {
			if u.Path == "" || u.Path == "/" {
				u.Path = "/metrics"
			}
			p.AdvertiseURL = u.String()
		}
	}
	return p
}

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

// allDigitsAndDots is a host that looks like an IPv4 address but is not
// one (999.1.1.1): a name lookup would fail later and blame the port.
func allDigitsAndDots(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

var queuePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Jobs reads JOB_QUEUE, JOB_MAX_ATTEMPTS, JOB_RETRY_BACKOFF,
// JOB_VISIBILITY_TIMEOUT, REDIS_WAIT_REPLICAS and REDIS_WAIT_TIMEOUT, with
// the jobs package's defaults.
func (l *Loader) Jobs() Jobs {
	return Jobs{
		Queue:             l.Queue(),
		MaxAttempts:       l.Int("JOB_MAX_ATTEMPTS", jobs.DefaultMaxAttempts, 1, 100),
		RetryBackoff:      l.Seconds("JOB_RETRY_BACKOFF", jobs.DefaultBackoff, 0, time.Hour),
		VisibilityTimeout: l.Seconds("JOB_VISIBILITY_TIMEOUT", jobs.DefaultVisibilityTimeout, time.Second, MaxSeconds),
		Replicas: jobs.Replicas{
			Wait:    l.Int("REDIS_WAIT_REPLICAS", 0, 0, 100),
			Timeout: l.Seconds("REDIS_WAIT_TIMEOUT", jobs.DefaultReplicaTimeout, 10*time.Millisecond, MaxReplicaTimeout),
		},
	}
}

// MaxReplicaTimeout bounds REDIS_WAIT_TIMEOUT below go-redis's read
// timeout (3s), which a pipeline's WAIT must answer within.
const MaxReplicaTimeout = 2500 * time.Millisecond

// Queue reads JOB_QUEUE.
func (l *Loader) Queue() string {
	q := l.String("JOB_QUEUE", jobs.DefaultQueue)
	if !queuePattern.MatchString(q) {
		l.Bad("JOB_QUEUE", q, "1 to 64 letters, digits, '.', '_' or '-'")
		return jobs.DefaultQueue
	}
	return q
}

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// WorkerID reads WORKER_ID, or derives the default from d (DefaultWorkerID).
func (l *Loader) WorkerID(d logging.Deployment) string {
	id := l.String("WORKER_ID", "")
	if id == "" {
		return DefaultWorkerID(d)
	}
	if !workerIDPattern.MatchString(id) {
		l.Bad("WORKER_ID", id, "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	}
	return id
}

// DefaultWorkerID derives a worker id from the host: "worker-<hostname>" in
// a container, where each replica has its own hostname (so
// `docker compose --scale worker=5` gives five ids), and
// "worker-<hostname>-<pid>" elsewhere, where several workers share a host.
func DefaultWorkerID(d logging.Deployment) string {
	host := d.Hostname
	if host == "" {
		host = "localhost"
	}
	host = sanitizeID(host)
	if d.ContainerID != "" {
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

// AdvertisedMetricsURL returns the URL at which a process listening on
// listenAddr, bound to boundPort, can be reached from elsewhere: advertise
// when set; else the listen address when it names a host; else the host's
// first non-loopback address (what another container or Prometheus can
// reach), falling back to the hostname.
func AdvertisedMetricsURL(advertise, listenAddr string, boundPort int) string {
	if advertise != "" {
		return advertise
	}
	host, _, _ := net.SplitHostPort(listenAddr)
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
