// Package fleet reads the worker fleet from the heartbeats in Redis and
// shows it to people and to Prometheus.
//
// A Reader lists the workers named by the worker:index sorted set, reads
// their heartbeat hashes in pipelined batches (a few round trips per
// thousand workers, never SCAN or KEYS) and judges each one:
//
//   - alive: its last beat is at most 1.5 x its own interval old;
//   - stale: later than that, while its hash still exists (missed beats:
//     stuck, killed, or cut off from Redis);
//   - invalid: its hash does not follow docs/wire-format.md (a worker in
//     another language got a field wrong); listed with the reason.
//
// A worker whose hash has expired is gone: the Reader drops it from the
// index. Ages are measured on Redis's clock (TIME), so neither the reader's
// nor a worker's clock can make a dead worker look alive; a worker whose
// clock runs ahead is reported with its ClockSkew.
//
// Summary counts a large fleet and Page lists it a page at a time (by
// state, id prefix and cursor) from the derived keys a Go worker keeps
// (heartbeat.Options.StateIndex), reading only the hashes they need; a
// worker that keeps none is still counted and listed, from its hash.
//
// Around the Reader: Mount serves the fleet as JSON, its history, Server-Sent
// Events and Prometheus HTTP service discovery; NewCollector exports the
// fleet_* metrics; WriteTable and WriteInspect format it for a terminal.
// The JSON shapes are documented in docs/wire-format.md, "Fleet view".
package fleet
