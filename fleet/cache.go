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

// decode returns the entry of worker id's hash raw, read at now: the cached
// one when the hash has not changed since, else a new one. A beat rewrites
// the whole hash with a new timestamp, so an unchanged hash is one that
// nobody wrote to; the checksum makes sure of it, for the price of a hash
// of some 500 bytes instead of the two JSON objects Decode parses.
func (r *Reader) decode(id string, raw map[string]string, now time.Time) *entry {
	sum := r.checksum(raw)
	r.mu.Lock()
	cached := r.cache[id]
	r.mu.Unlock()
	if cached != nil && cached.sum == sum {
		return cached
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

// checksum hashes the fields of raw in any order: the sum of a hash of
// each name and value.
func (r *Reader) checksum(raw map[string]string) uint64 {
	sum := uint64(len(raw))
	for k, v := range raw {
		sum += maphash.String(r.seed, k)*0x9e3779b97f4a7c15 ^ maphash.String(r.seed, v)
	}
	return sum
}
