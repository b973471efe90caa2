package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
)

// History reads the stream back in chunks of historyChunk entries, and
// gives up on a worker after historyScan entries: about the whole stream
// at its default cap, so a worker that beat recently is always found and
// one that left long ago costs a bounded read.
const (
	historyChunk = 500
	historyScan  = heartbeat.DefaultStreamMaxLen
)

// Point is one beat of the worker:status stream: what the worker was doing
// and using then.
type Point struct {
	Timestamp     time.Time // the worker's
	WorkerID      string
	State         string
	MemoryMB      float64
	CPUPercent    float64
	JobsProcessed uint64
	JobsFailed    uint64
}

// MarshalJSON writes the point with the heartbeat's names, the timestamp in
// Unix seconds.
func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Timestamp     float64 `json:"timestamp"`
		WorkerID      string  `json:"worker_id"`
		State         string  `json:"state"`
		MemoryMB      float64 `json:"memory_mb"`
		CPUPercent    float64 `json:"cpu_percent"`
		JobsProcessed uint64  `json:"jobs_processed"`
		JobsFailed    uint64  `json:"jobs_failed"`
	}{unixSeconds(p.Timestamp), p.WorkerID, p.State, p.MemoryMB, p.CPUPercent, p.JobsProcessed, p.JobsFailed})
}

// History returns the newest n beats of a worker, oldest first, from the
// worker:status stream; workerID "" means every worker's. It reads the
// stream newest first in chunks and stops after about the stream's default
// cap of entries, so it may return fewer than n for a worker that has been
// quiet for long. Entries that do not decode are skipped. The result is
// never nil.
func (r *Reader) History(ctx context.Context, workerID string, n int) ([]Point, error) {
	points := make([]Point, 0, min(max(n, 0), historyChunk))
	end := "+"
	for scanned := 0; len(points) < n && scanned < historyScan; {
		count := historyChunk
		if workerID == "" {
			count = min(count, n-len(points))
		}
		count = min(count, historyScan-scanned)
		entries, err := r.rdb.XRevRangeN(ctx, heartbeat.StreamKey, end, "-", int64(count)).Result()
		if err != nil {
			return nil, fmt.Errorf("fleet: read %s: %w", heartbeat.StreamKey, err)
		}
		for _, e := range entries {
			if len(points) == n {
				break
			}
			// The field name is the wire format's; checking it before
			// decoding skips the other workers' entries cheaply.
			if workerID != "" && e.Values["worker_id"] != workerID {
				continue
			}
			if p, ok := pointOf(e); ok {
				points = append(points, p)
			}
		}
		scanned += len(entries)
		if len(entries) < count {
			break // the start of the stream
		}
		end = "(" + entries[len(entries)-1].ID // exclusive: Redis 6.2 and later
	}
	slices.Reverse(points)
	return points, nil
}

// pointOf decodes a stream entry.
func pointOf(e redis.XMessage) (Point, bool) {
	fields := make(map[string]string, len(e.Values))
	for k, v := range e.Values {
		if s, ok := v.(string); ok {
			fields[k] = s
		}
	}
	s, err := heartbeat.Decode(fields)
	if err != nil {
		return Point{}, false
	}
	return Point{
		Timestamp: s.Timestamp, WorkerID: s.WorkerID, State: s.State,
		MemoryMB: s.Resources.MemoryMB, CPUPercent: s.Resources.CPUPercent,
		JobsProcessed: s.JobsProcessed, JobsFailed: s.JobsFailed,
	}, true
}
