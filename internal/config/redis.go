package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging"
)

// DefaultSentinelPort is a Sentinel address's port when the URL gives none.
const DefaultSentinelPort = "26379"

// redisURLForms is what REDIS_URL allows, for error messages.
const redisURLForms = "redis://[:password@]host:port/db, rediss:// for TLS, " +
	"or redis+sentinel://[:password@]host1:26379,host2:26379/<master>/<db> (rediss+sentinel:// for TLS)"

// Redis is a parsed REDIS_URL: one server (Server) or a master found
// through Redis Sentinel (Failover). Exactly one is set.
type Redis struct {
	Server   *redis.Options
	Failover *redis.FailoverOptions
}

// NewClient returns a client of r that the caller closes: go-redis's
// failover client for a Sentinel URL, which asks the sentinels for the
// master and follows a failover (+switch-master) without a restart. Every
// command honours its context's deadline, so a slow Redis never holds a
// beat or a request past it.
func (r Redis) NewClient() redis.UniversalClient {
	if r.Failover != nil {
		o := *r.Failover
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(&o)
	}
	o := *r.Server
	o.ContextTimeoutEnabled = true
	return redis.NewClient(&o)
}

// LoadRedis reads only REDIS_URL, for commands that just read the fleet.
// It returns the URL as given (it may hold a password: log it through
// logging.RedactString) and its parsed form.
func LoadRedis(getenv func(string) string) (string, Redis, error) {
	raw := New(getenv).String("REDIS_URL", DefaultRedisURL)
	r, err := ParseRedisURL(raw)
	return raw, r, err
}

// ParseRedisURL parses a REDIS_URL. Besides go-redis's redis:// and
// rediss:// it reads the Sentinel form other Redis clients use:
//
//	redis+sentinel://[[user]:password@]host1:26379,host2:26379/<master>/<db>
//
// The password is the master's and its replicas' (requirepass); the
// sentinels' own, when they require one, is the query parameter
// sentinel_password (and sentinel_username). A sentinel without a port is
// on 26379; db defaults to 0. Other query parameters are go-redis's
// (dial_timeout=2s, ...). An error names REDIS_URL, masks the password and
// says what is allowed.
func ParseRedisURL(raw string) (Redis, error) {
	var r Redis
	var err error
	scheme, _, _ := strings.Cut(raw, "://")
	switch scheme {
	case "redis+sentinel", "rediss+sentinel":
		r.Failover, err = parseSentinelURL(raw)
	default:
		r.Server, err = redis.ParseURL(raw)
	}
	if err != nil {
		return Redis{}, fmt.Errorf("REDIS_URL=%q: want %s (%s)", logging.RedactString(raw), redisURLForms, logging.RedactString(err.Error()))
	}
	return r, nil
}

// parseSentinelURL reads a redis+sentinel:// URL. The authority holds a
// list of addresses, which url.Parse does not read as a host, so the
// parts are cut out here and go-redis's own parser reads the query.
func parseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	rest, query, _ := strings.Cut(rest, "?")
	if strings.Contains(rest, "#") {
		return nil, errors.New("a fragment (#) is not allowed")
	}
	authority, path, _ := strings.Cut(rest, "/")
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i], authority[i+1:]
	}
	addrs, err := sentinelAddrs(hosts)
	if err != nil {
		return nil, err
	}
	master, db, err := masterAndDB(path)
	if err != nil {
		return nil, err
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	for _, name := range []string{"addr", "master_name", "db", "username", "password"} {
		if q.Has(name) {
			return nil, fmt.Errorf("the query parameter %s is not allowed: the addresses, master, db and password are parts of the URL", name)
		}
	}
	sentinelUser, sentinelPass := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	q.Set("master_name", master)
	q.Set("db", strconv.Itoa(db))
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	// go-redis's form: the first sentinel is the host, the others addr=.
	u := url.URL{Scheme: strings.TrimSuffix(scheme, "+sentinel"), Host: addrs[0], Path: "/", RawQuery: q.Encode()}
	o, err := redis.ParseFailoverURL(u.String())
	if err != nil {
		return nil, err
	}
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPass
	o.Username, o.Password, err = splitUserinfo(userinfo)
	return o, err
}

// sentinelAddrs reads "host1:26379,host2,[::1]:26380".
func sentinelAddrs(hosts string) ([]string, error) {
	if hosts == "" {
		return nil, errors.New("no sentinel address")
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		host, port := h, DefaultSentinelPort
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			host = h[1 : len(h)-1]
		} else if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
			var err error
			if host, port, err = net.SplitHostPort(h); err != nil {
				return nil, fmt.Errorf("sentinel address %q: %w", h, err)
			}
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("sentinel address %q: want host:port", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

// masterAndDB reads the path "<master>/<db>" (db optional).
func masterAndDB(path string) (string, int, error) {
	master, dbText, _ := strings.Cut(strings.TrimSuffix(path, "/"), "/")
	master, err := url.PathUnescape(master)
	if err != nil || master == "" || strings.ContainsAny(master, " \t/") {
		return "", 0, errors.New("no master name: want /<master>/<db> after the sentinels' addresses")
	}
	if dbText == "" {
		return master, 0, nil
	}
	db, err := strconv.Atoi(dbText)
	if err != nil || db < 0 {
		return "", 0, fmt.Errorf("database %q: want a number from 0", dbText)
	}
	return master, db, nil
}

// splitUserinfo reads "[user]:password" or "password", percent-decoded.
func splitUserinfo(userinfo string) (user, pass string, err error) {
	if userinfo == "" {
		return "", "", nil
	}
	user, pass, ok := strings.Cut(userinfo, ":")
	if !ok {
		user, pass = "", user
	}
	if user, err = url.PathUnescape(user); err != nil {
		return "", "", errors.New("the user name is not percent-encoded properly")
	}
	if pass, err = url.PathUnescape(pass); err != nil {
		return "", "", errors.New("the password is not percent-encoded properly")
	}
	return user, pass, nil
}
