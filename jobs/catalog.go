package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// TypesKey returns the key of the hash in which a queue's workers
// advertise the job types they run: field the type, value the Unix
// milliseconds until which the advertisement holds.
func TypesKey(queue string) string { return keysFor(queueName(queue), false).stream + ":types" }

func queueName(q string) string {
	if q == "" {
		return DefaultQueue
	}
	return q
}

// AdvertiseTypes says, until ttl from now, that a worker of queue runs
// types; workers call it periodically (the worker package does, at its
// heartbeat interval), so a bot accepts the types of every live worker,
// its own or not. One round trip.
func AdvertiseTypes(ctx context.Context, rdb redis.UniversalClient, queue string, types []string, ttl time.Duration) error {
	if len(types) == 0 {
		return nil
	}
	until := strconv.FormatInt(time.Now().Add(ttl).UnixMilli(), 10)
	args := make([]any, 0, 2*len(types))
	for _, t := range types {
		args = append(args, t, until)
	}
	return rdb.HSet(ctx, TypesKey(queue), args...).Err()
}

// catalogRefresh is how long a Catalog trusts its copy of the advertised
// types, and catalogTimeout bounds one read of them.
const (
	catalogRefresh = 2 * time.Second
	catalogTimeout = time.Second
)

// Catalog is the set of job types a producer accepts for a queue: those
// of its local Mux, with their validators, and those the queue's live
// workers advertise (AdvertiseTypes), whose payloads get the checks every
// payload gets at the door and their own on the worker. It reads Redis
// at most every two seconds, with a deadline, and answers from its last
// copy when Redis does not. It is safe for concurrent use.
type Catalog struct {
	rdb   redis.UniversalClient
	key   string
	local *Mux
	now   func() time.Time

	mu      sync.Mutex
	remote  map[string]time.Time // type -> advertised until
	fetched time.Time
}

// NewCatalog returns the catalog of queue: local's types (nil for none)
// and those advertised in rdb.
func NewCatalog(rdb redis.UniversalClient, queue string, local *Mux) *Catalog {
	if local == nil {
		local = NewMux()
	}
	return &Catalog{rdb: rdb, key: TypesKey(queue), local: local, now: time.Now}
}

// Has reports whether typ is a local type or one a live worker advertises.
func (c *Catalog) Has(typ string) bool {
	if c.local.Has(typ) {
		return true
	}
	until, ok := c.advertised()[typ]
	return ok && until.After(c.now())
}

// Types returns every accepted type, sorted.
func (c *Catalog) Types() []string {
	types := c.local.Types()
	now := c.now()
	for t, until := range c.advertised() {
		if until.After(now) && !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	slices.Sort(types)
	return types
}

// Validate checks payload for typ: with the local validator for a local
// type; for an advertised one, the checks every payload gets (one JSON
// object in valid UTF-8, nothing after it), its own running on the worker.
func (c *Catalog) Validate(typ string, payload json.RawMessage) error {
	if c.local.Has(typ) {
		return c.local.Validate(typ, payload)
	}
	if !c.Has(typ) {
		return fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	return checkJSON(payload)
}

// advertised returns the advertised types, read again when the copy is
// older than catalogRefresh.
func (c *Catalog) advertised() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.remote != nil && now.Sub(c.fetched) < catalogRefresh {
		return c.remote
	}
	ctx, cancel := context.WithTimeout(context.Background(), catalogTimeout)
	defer cancel()
	raw, err := c.rdb.HGetAll(ctx, c.key).Result()
	c.fetched = now
	if err != nil {
		if c.remote == nil {
			c.remote = map[string]time.Time{}
		}
		return c.remote // the last copy, until Redis answers again
	}
	remote := make(map[string]time.Time, len(raw))
	var expired []string
	for t, v := range raw {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || checkType(t) != nil || time.UnixMilli(ms).Before(now.Add(-time.Hour)) {
			expired = append(expired, t) // malformed, or long gone: tidy up
			continue
		}
		remote[t] = time.UnixMilli(ms)
	}
	if len(expired) > 0 {
		_ = c.rdb.HDel(ctx, c.key, expired...).Err()
	}
	c.remote = remote
	return remote
}
