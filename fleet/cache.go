package fleet

import (
	"fmt"
	"hash/maphash"
	"time"

	"github.com/botfleet/botfleet/heartbeat"
)

// entry is a heartbeat hash as the Reader decoded it. Entries are never
// modified, so Lists running at once can share them.
type entry struct {
	sum       uint64           // checksum of the hash's fields
	status    heartbeat.Status // when valid
	reason    string           // why the hash is invalid; "" when valid
	firstRead time.Time        // Redis's time when the Reader first read this content
}

// decode returns the entry of worker id's hash, read at now as the values
// of hashFields: the cached one when the values have not changed since,
// else a new one. A beat rewrites the whole hash with a new timestamp, so
// unchanged values are a hash that nobody wrote to; the checksum makes
// sure of it, for the price of a hash of some 500 bytes instead of the two
// JSON objects Decode parses.
func (r *Reader) decode(id string, vals []any, now time.Time) *entry {
	sum := r.checksum(vals)
	r.mu.Lock()
	cached := r.cache[id]
	r.mu.Unlock()
	if cached != nil && cached.sum == sum {
		return cached
	}
	raw := make(map[string]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			raw[hashFields[i]] = s
		}
	}
	e := &entry{sum: sum, firstRead: now}
	st, err := heartbeat.Decode(raw)
	switch {
	case err != nil:
		e.reason = err.Error()
	case st.WorkerID != id:
		e.reason = fmt.Sprintf("heartbeat: field %q: %q is not the id in the key %s%s", "worker_id", st.WorkerID, heartbeat.KeyPrefix, id)
	default:
		e.status = st
	}
	return e
}

// checksum hashes the values of the fields, each with its place, a missing
// field apart from an empty one.
func (r *Reader) checksum(vals []any) uint64 {
	sum := uint64(len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			sum += (maphash.String(r.seed, s) + uint64(i)) * 0x9e3779b97f4a7c15
		}
	}
	return sum
}
