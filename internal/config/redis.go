package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/logging"
)

// DefaultSentinelPort is a Sentinel address's port when the URL gives none.
const DefaultSentinelPort = "26379"

// DefaultClusterPort is a Redis Cluster node's port when the URL gives
// none: Redis's own port, as redis:// assumes for one server.
const DefaultClusterPort = "6379"

// DefaultClusterStateReloadInterval is how old a cluster client's map of
// the slots to their masters (CLUSTER SLOTS) may grow before the next
// command has the client ask again, in the background; NewClient sets it
// when the options leave it zero. go-redis reloads the map at once on a
// MOVED or ASK redirection, but not when a master stops answering: after
// a failover it would keep sending the dead master's slots to the dead
// master, every command failing, until the map expires (go-redis's own
// default: 60 s). A reload is one CLUSTER SLOTS, a small reply.
const DefaultClusterStateReloadInterval = time.Second

// redisURLForms is what REDIS_URL allows, for error messages.
const redisURLForms = "redis://[:password@]host:port/db, rediss:// for TLS, " +
	"redis+sentinel://[:password@]host1:26379,host2:26379/<master>/<db> (rediss+sentinel:// for TLS), " +
	"or redis+cluster://[:password@]host1:6379,host2:6379/ (rediss+cluster:// for TLS)"

// Redis is a parsed REDIS_URL: one server (Server), a master found through
// Redis Sentinel (Failover), or a Redis Cluster reached through any of its
// nodes (Cluster). Exactly one is set.
type Redis struct {
	Server   *redis.Options
	Failover *redis.FailoverOptions
	Cluster  *redis.ClusterOptions
}

// NewClient returns a client of r that the caller closes: go-redis's
// failover client for a Sentinel URL, which asks the sentinels for the
// master and follows a failover (+switch-master) without a restart, and
// its cluster client for a Cluster URL, which learns the slots from the
// nodes given, follows MOVED and ASK redirections and, with
// ClusterStateReloadInterval zero, reloads the slot map once a command
// finds it older than DefaultClusterStateReloadInterval: so within about
// that of a replica's promotion it sends a dead master's slots to the new
// master. Every command
// honours its context's deadline, so a slow Redis never holds a beat or a
// request past it.
func (r Redis) NewClient() redis.UniversalClient {
	switch {
	case r.Cluster != nil:
		o := *r.Cluster
		o.ContextTimeoutEnabled = true
		if o.ClusterStateReloadInterval == 0 {
			o.ClusterStateReloadInterval = DefaultClusterStateReloadInterval
		}
		return redis.NewClusterClient(&o)
	case r.Failover != nil:
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
// rediss:// it reads the Sentinel and Cluster forms other Redis clients
// use:
//
//	redis+sentinel://[[user]:password@]host1:26379,host2:26379/<master>/<db>
//	redis+cluster://[[user]:password@]host1:6379,host2:6379/
//
// The rediss+ schemes are the same over TLS. In the Sentinel form the
// password is the master's and its replicas' (requirepass); the sentinels'
// own, when they require one, is the query parameter sentinel_password
// (and sentinel_username). A sentinel without a port is on 26379; db
// defaults to 0. In the Cluster form the addresses are some of the
// cluster's nodes (the client learns the others from them), a node
// without a port is on 6379, and the path is empty, "/" or "/0": a
// Redis Cluster has database 0 only. Other query parameters are
// go-redis's (dial_timeout=2s, ...). An error names REDIS_URL, masks the
// password and says what is allowed.
func ParseRedisURL(raw string) (Redis, error) {
	var r Redis
	var err error
	scheme, _, _ := strings.Cut(raw, "://")
	switch scheme {
	case "redis+sentinel", "rediss+sentinel":
		r.Failover, err = parseSentinelURL(raw)
	case "redis+cluster", "rediss+cluster":
		r.Cluster, err = parseClusterURL(raw)
	default:
		r.Server, err = redis.ParseURL(raw)
	}
	if err != nil {
		return Redis{}, fmt.Errorf("REDIS_URL=%q: want %s (%s)", logging.RedactString(raw), redisURLForms, logging.RedactString(err.Error()))
	}
	return r, nil
}

// multiHostURL is a URL whose authority holds a list of addresses, which
// url.Parse does not read as a host, cut into its parts.
type multiHostURL struct {
	scheme   string // as given, "redis+sentinel"
	userinfo string // "[user]:password", still percent-encoded
	hosts    string // "host1:port,host2"
	path     string // after the authority's "/", without it
	query    url.Values
}

// splitMultiHostURL cuts raw ("scheme://[userinfo@]hosts[/path][?query]")
// into its parts. A fragment is refused: it would be a part of the
// password or the path unnoticed.
func splitMultiHostURL(raw string) (multiHostURL, error) {
	var u multiHostURL
	scheme, rest, _ := strings.Cut(raw, "://")
	rest, query, _ := strings.Cut(rest, "?")
	if strings.Contains(rest, "#") {
		return u, errors.New("a fragment (#) is not allowed")
	}
	authority, path, _ := strings.Cut(rest, "/")
	u.scheme, u.hosts, u.path = scheme, authority, path
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		u.userinfo, u.hosts = authority[:i], authority[i+1:]
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return u, fmt.Errorf("query: %w", err)
	}
	u.query = q
	return u, nil
}

// refuseParams returns an error if q has one of names: parts of the URL
// that a query parameter must not override unnoticed.
func refuseParams(q url.Values, parts string, names ...string) error {
	for _, name := range names {
		if q.Has(name) {
			return fmt.Errorf("the query parameter %s is not allowed: %s are parts of the URL", name, parts)
		}
	}
	return nil
}

// parseSentinelURL reads a redis+sentinel:// URL; go-redis's own parser
// reads the query.
func parseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	u, err := splitMultiHostURL(raw)
	if err != nil {
		return nil, err
	}
	addrs, err := hostAddrs(u.hosts, DefaultSentinelPort, "sentinel")
	if err != nil {
		return nil, err
	}
	master, db, err := masterAndDB(u.path)
	if err != nil {
		return nil, err
	}
	q := u.query
	if err := refuseParams(q, "the addresses, master, db and password", "addr", "master_name", "db", "username", "password"); err != nil {
		return nil, err
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
	gu := url.URL{Scheme: strings.TrimSuffix(u.scheme, "+sentinel"), Host: addrs[0], Path: "/", RawQuery: q.Encode()}
	o, err := redis.ParseFailoverURL(gu.String())
	if err != nil {
		return nil, err
	}
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPass
	o.Username, o.Password, err = splitUserinfo(u.userinfo)
	return o, err
}

// parseClusterURL reads a redis+cluster:// URL; go-redis's own parser
// reads the query.
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	u, err := splitMultiHostURL(raw)
	if err != nil {
		return nil, err
	}
	addrs, err := hostAddrs(u.hosts, DefaultClusterPort, "cluster node")
	if err != nil {
		return nil, err
	}
	if p := strings.TrimSuffix(u.path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("database %q: Redis Cluster has only database 0; leave the path empty or give /0", p)
	}
	q := u.query
	if err := refuseParams(q, "the addresses, db and password", "addr", "db", "username", "password"); err != nil {
		return nil, err
	}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	// go-redis's form: the first node is the host, the others addr=.
	gu := url.URL{Scheme: strings.TrimSuffix(u.scheme, "+cluster"), Host: addrs[0], Path: "/", RawQuery: q.Encode()}
	o, err := redis.ParseClusterURL(gu.String())
	if err != nil {
		return nil, err
	}
	if o.TLSConfig != nil {
		// go-redis names the first node as every node's server: cleared,
		// crypto/tls checks each node's certificate against its own host.
		o.TLSConfig.ServerName = ""
	}
	o.Username, o.Password, err = splitUserinfo(u.userinfo)
	return o, err
}

// hostAddrs reads "host1:port,host2,[::1]:port", what naming the
// addresses in errors ("sentinel"); an address without a port gets
// defaultPort.
func hostAddrs(hosts, defaultPort, what string) ([]string, error) {
	if hosts == "" {
		return nil, fmt.Errorf("no %s address", what)
	}
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		host, port := h, defaultPort
		if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
			host = h[1 : len(h)-1]
		} else if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
			var err error
			if host, port, err = net.SplitHostPort(h); err != nil {
				return nil, fmt.Errorf("%s address %q: %w", what, h, err)
			}
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s address %q: want host:port, the port from 1 to 65535", what, h)
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
