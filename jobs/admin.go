package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/wire"
)

// ErrNotDead is returned (wrapped) by Retry and Delete for a job that is
// not a dead letter: only dead jobs are retried or deleted by hand.
var ErrNotDead = errors.New("jobs: job is not dead")

// StatusDead names, in listings, the jobs that failed for good: those with
// StatusFailed, whose dead letters Retry and Delete act on.
const StatusDead = "dead"

// Statuses are the statuses List accepts, in a job's order of life.
var Statuses = []string{StatusQueued, StatusRunning, StatusRetrying, StatusSucceeded, StatusFailed}

// Detail is one job whole: what Info says, its payload, and its attempt
// history, oldest first.
type Detail struct {
	Info
	Payload json.RawMessage `json:"payload,omitempty"` // nil when the hash has none (a producer that did not write it)
	History []Attempt       `json:"attempt_history"`
	DeadID  string          `json:"dead_id,omitempty"` // the dead letter's stream id, when dead
}

// Show returns the job with its payload and attempt history;
// ErrNotFound if its hash is gone. One round trip.
func (q *Queue) Show(ctx context.Context, id string) (Detail, error) {
	var (
		fields *redis.MapStringStringCmd
		hist   *redis.StringSliceCmd
	)
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HGetAll(ctx, q.keys.jobKey(id))
		hist = p.LRange(ctx, q.keys.attemptsKey(id), 0, -1)
		return nil
	})
	if err != nil {
		return Detail{}, fmt.Errorf("jobs: show %s: %w", id, err)
	}
	f := fields.Val()
	if len(f) == 0 {
		return Detail{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	d := Detail{Info: infoFrom(id, f), DeadID: f["dead_id"], History: []Attempt{}}
	if p, ok := f[fieldPayload]; ok {
		d.Payload = json.RawMessage(p)
	}
	for _, s := range hist.Val() {
		var a Attempt
		if json.Unmarshal([]byte(s), &a) == nil {
			d.History = append(d.History, a)
		}
	}
	return d, nil
}

// ListOptions select a page of jobs for List.
type ListOptions struct {
	// Status is one of Statuses, or StatusDead (the same as StatusFailed);
	// empty means every status.
	Status string
	// Type keeps only jobs of this type; empty means all.
	Type string
	// Since keeps only jobs changed at or after it; zero means all.
	Since time.Time
	// Limit is the page's size, 1 to 1000; 0 means 100.
	Limit int
	// Cursor is the NextCursor of the previous page; empty means the first.
	Cursor string
}

// Page is one page of a listing, newest change first.
type Page struct {
	Jobs []Info `json:"jobs"`
	// NextCursor continues the listing; empty on the last page. A page
	// may hold fewer than Limit jobs while it is not empty (a type filter
	// stopped after reading listScanMax entries).
	NextCursor string `json:"next_cursor"`
}

// Limits of a listing.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
	listScanMax      = 5000 // index entries one page reads at most, filtered out or not
)

// ErrBadListOptions is wrapped by List's error for options it refuses.
var ErrBadListOptions = errors.New("jobs: bad list options")

// candidate is one index entry.
type candidate struct {
	id string
	ms int64
}

// List returns a page of the queue's jobs, newest change first, from the
// indexes by status (never SCAN): each page reads at most Limit+1 entries
// of each status's index below the cursor, and the hashes of the jobs it
// returns; with Type, at most listScanMax entries.
func (q *Queue) List(ctx context.Context, o ListOptions) (Page, error) {
	statuses, limit, cur, err := o.check()
	if err != nil {
		return Page{}, err
	}
	page := Page{Jobs: []Info{}}
	scanned := 0
	for len(page.Jobs) < limit && scanned < listScanMax {
		batch := limit - len(page.Jobs)
		if o.Type != "" {
			batch = min(max(batch*4, 100), listScanMax-scanned)
		}
		cands, more, err := q.candidates(ctx, statuses, cur, batch, o.Since)
		if err != nil {
			return Page{}, err
		}
		infos, err := q.hashes(ctx, cands)
		if err != nil {
			return Page{}, err
		}
		for i, c := range cands {
			cur = &c
			scanned++
			if info, ok := infos[i]; ok && (o.Type == "" || info.Type == o.Type) {
				page.Jobs = append(page.Jobs, info)
				if len(page.Jobs) == limit {
					if more || i < len(cands)-1 {
						page.NextCursor = cursorOf(c)
					}
					return page, nil
				}
			}
		}
		if !more {
			return page, nil
		}
	}
	if cur != nil {
		page.NextCursor = cursorOf(*cur)
	}
	return page, nil
}

func (o ListOptions) check() (statuses []string, limit int, cur *candidate, err error) {
	switch {
	case o.Status == "":
		statuses = Statuses
	case o.Status == StatusDead:
		statuses = []string{StatusFailed}
	case slices.Contains(Statuses, o.Status):
		statuses = []string{o.Status}
	default:
		return nil, 0, nil, fmt.Errorf("%w: status %q: want one of %s, %s", ErrBadListOptions, o.Status, strings.Join(Statuses, ", "), StatusDead)
	}
	limit = o.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 1 || limit > MaxListLimit {
		return nil, 0, nil, fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadListOptions, o.Limit, MaxListLimit)
	}
	if o.Cursor != "" {
		c, err := parseCursor(o.Cursor)
		if err != nil {
			return nil, 0, nil, err
		}
		cur = &c
	}
	return statuses, limit, cur, nil
}

// cursorOf is "<ms>:<id>" of the last entry a page returned.
func cursorOf(c candidate) string { return strconv.FormatInt(c.ms, 10) + ":" + c.id }

func parseCursor(s string) (candidate, error) {
	ms, id, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return candidate{}, fmt.Errorf("%w: cursor %q: pass back a next_cursor as it was", ErrBadListOptions, s)
	}
	return candidate{id: id, ms: n}, nil
}

// before reports whether a comes after b in the listing: older, or as
// old with a smaller id (ZREVRANGE's order).
func before(a, b candidate) bool { return a.ms < b.ms || a.ms == b.ms && a.id < b.id }

// candidates returns up to n index entries of statuses after cur, newest
// first, merged, and whether more may follow.
func (q *Queue) candidates(ctx context.Context, statuses []string, cur *candidate, n int, since time.Time) ([]candidate, bool, error) {
	maxScore, minScore := "+inf", "-inf"
	if cur != nil {
		maxScore = strconv.FormatInt(cur.ms, 10)
	}
	if !since.IsZero() {
		minScore = strconv.FormatInt(since.UnixMilli(), 10)
	}
	const tieSlack = 64 // entries of the cursor's own millisecond that may precede it
	cmds := make([]*redis.ZSliceCmd, len(statuses))
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range statuses {
			cmds[i] = p.ZRevRangeByScoreWithScores(ctx, q.keys.index(s), &redis.ZRangeBy{Max: maxScore, Min: minScore, Count: int64(n + 1 + tieSlack)})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, false, fmt.Errorf("jobs: list %s: %w", q.name, err)
	}
	var all []candidate
	more := false
	for _, cmd := range cmds {
		zs := cmd.Val()
		if len(zs) == n+1+tieSlack {
			more = true
		}
		for _, z := range zs {
			c := candidate{id: fmt.Sprint(z.Member), ms: int64(z.Score)}
			if cur == nil || before(c, *cur) {
				all = append(all, c)
			}
		}
	}
	slices.SortFunc(all, func(a, b candidate) int {
		switch {
		case before(b, a):
			return -1
		case before(a, b):
			return 1
		}
		return 0
	})
	all = slices.CompactFunc(all, func(a, b candidate) bool { return a.id == b.id })
	if len(all) > n {
		all, more = all[:n], true
	}
	return all, more, nil
}

// hashes reads the candidates' hashes; a job whose hash is gone is left
// out (its index entry ages out).
func (q *Queue) hashes(ctx context.Context, cands []candidate) (map[int]Info, error) {
	cmds := make([]*redis.MapStringStringCmd, len(cands))
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range cands {
			cmds[i] = p.HGetAll(ctx, q.keys.jobKey(c.id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: list %s: %w", q.name, err)
	}
	out := make(map[int]Info, len(cands))
	for i, cmd := range cmds {
		if f := cmd.Val(); len(f) > 0 {
			out[i] = infoFrom(cands[i].id, f)
		}
	}
	return out, nil
}

// Retry queues a dead job again, keeping its id and history: its attempts
// count afresh from 1. ErrNotDead if it is not dead, ErrNotFound if its
// hash is gone.
func (q *Queue) Retry(ctx context.Context, id string) error {
	now := q.o.Clock.Now().UTC()
	mark, _ := json.Marshal(Attempt{FinishedAt: now, Outcome: "retried"})
	keys := []string{q.keys.jobKey(id), q.keys.stream, q.keys.dead, q.keys.index(StatusFailed), q.keys.index(StatusQueued), q.keys.attemptsKey(id)}
	res, err := retryScript.Run(ctx, q.rdb, keys, formatUnix(now), now.UnixMilli(), q.o.ResultTTL.Milliseconds(), mark, maxAttemptHistory).Slice()
	if err != nil {
		return fmt.Errorf("jobs: retry %s: %w", id, err)
	}
	return adminResult("retry", id, res)
}

// Delete deletes a dead job: its dead letter, hash and history.
// ErrNotDead if it is not dead, ErrNotFound if its hash is gone.
func (q *Queue) Delete(ctx context.Context, id string) error {
	keys := []string{q.keys.jobKey(id), q.keys.dead, q.keys.index(StatusFailed), q.keys.attemptsKey(id)}
	res, err := deleteScript.Run(ctx, q.rdb, keys, id).Slice()
	if err != nil {
		return fmt.Errorf("jobs: delete %s: %w", id, err)
	}
	return adminResult("delete", id, res)
}

func adminResult(what, id string, res []any) error {
	code, _ := res[0].(int64)
	switch code {
	case adminDone:
		return nil
	case adminNotDead:
		status, _ := res[1].(string)
		return fmt.Errorf("jobs: %s %s: %w: it is %s", what, id, ErrNotDead, status)
	case adminNotFound:
		return fmt.Errorf("jobs: %s: %w: %s", what, ErrNotFound, id)
	case adminNoEntry:
		return fmt.Errorf("jobs: %s %s: neither its dead letter nor its payload is left to run again", what, id)
	}
	return fmt.Errorf("jobs: %s %s: unexpected reply %v", what, id, res)
}

// DeadFilter selects dead jobs for RetryDead and PurgeDead.
type DeadFilter struct {
	Type  string    // only this type; empty means all
	Since time.Time // only those dead since; zero means all
}

// RetryDead retries every dead job the filter selects and returns their
// ids. It reads the dead jobs' index, never SCAN.
func (q *Queue) RetryDead(ctx context.Context, f DeadFilter) ([]string, error) {
	return q.eachDead(ctx, f, q.Retry)
}

// PurgeDead deletes every dead job the filter selects and returns their
// ids.
func (q *Queue) PurgeDead(ctx context.Context, f DeadFilter) ([]string, error) {
	return q.eachDead(ctx, f, q.Delete)
}

func (q *Queue) eachDead(ctx context.Context, f DeadFilter, act func(context.Context, string) error) ([]string, error) {
	done := []string{}
	o := ListOptions{Status: StatusFailed, Type: f.Type, Since: f.Since, Limit: MaxListLimit}
	var ids []string
	for {
		page, err := q.List(ctx, o)
		if err != nil {
			return done, err
		}
		for _, j := range page.Jobs {
			ids = append(ids, j.ID)
		}
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	for _, id := range ids {
		err := act(ctx, id)
		switch {
		case err == nil:
			done = append(done, id)
		case errors.Is(err, ErrNotDead), errors.Is(err, ErrNotFound): // changed meanwhile
		default:
			return done, err
		}
	}
	return done, nil
}

// Pause stops every worker of the queue from taking new jobs, within
// PauseCheckInterval; jobs running go on, and producers still enqueue.
func (q *Queue) Pause(ctx context.Context) error {
	now := formatUnix(q.o.Clock.Now())
	// The queue set is in another slot than the flag on a cluster.
	_, err := wire.TxPipelined(q.rdb)(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, q.keys.paused, now, 0)
		p.SAdd(ctx, QueuesKey, q.name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: pause %s: %w", q.name, err)
	}
	return nil
}

// Resume lets the queue's workers take jobs again.
func (q *Queue) Resume(ctx context.Context) error {
	if err := q.rdb.Del(ctx, q.keys.paused).Err(); err != nil {
		return fmt.Errorf("jobs: resume %s: %w", q.name, err)
	}
	return nil
}

// QueueInfo is a queue's overview: Stats, plus what an operator asks
// first.
type QueueInfo struct {
	Name string `json:"name"`
	Stats
	// Waiting counts the jobs no worker has read yet.
	Waiting int64 `json:"waiting"`
	// InFlight counts the jobs read by a worker and not finished: Pending.
	InFlight int64 `json:"in_flight"`
	// LatencySeconds is the age of the oldest job no worker has read yet;
	// 0 when none waits.
	LatencySeconds float64 `json:"latency_seconds"`
	// RatePerSecond is the jobs finished (succeeded or failed for good)
	// per second over the last minute.
	RatePerSecond float64 `json:"rate_per_second"`
	// Paused is whether Pause is in effect.
	Paused bool `json:"paused"`
}

// Info reads the queue's overview in two round trips.
func (q *Queue) Info(ctx context.Context) (QueueInfo, error) {
	st, err := q.Stats(ctx)
	if err != nil {
		return QueueInfo{}, err
	}
	keys := []string{q.keys.stream, q.keys.paused, q.keys.index(StatusSucceeded), q.keys.index(StatusFailed)}
	res, err := queueInfoScript.Run(ctx, q.rdb, keys, Group).Slice()
	if err != nil {
		return QueueInfo{}, fmt.Errorf("jobs: info of %s: %w", q.name, err)
	}
	now, _ := res[0].(int64)
	oldest, _ := res[1].(string)
	waiting, _ := res[2].(int64)
	done, _ := res[3].(int64)
	paused, _ := res[4].(int64)
	qi := QueueInfo{Name: q.name, Stats: st, Waiting: max(waiting, 0), InFlight: st.Pending,
		RatePerSecond: float64(done) / 60, Paused: paused == 1}
	if ms, _, ok := strings.Cut(oldest, "-"); ok {
		if t, err := strconv.ParseInt(ms, 10, 64); err == nil && now > t {
			qi.LatencySeconds = float64(now-t) / 1e3
		}
	}
	return qi, nil
}

// Queues returns the names of the queues producers have used (the
// jobs:queues set), sorted.
func Queues(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	names, err := rdb.SMembers(ctx, QueuesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: queues: %w", err)
	}
	slices.Sort(names)
	return names, nil
}
