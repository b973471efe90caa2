package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
)

// The limits of Query.Limit.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Query selects one page of the fleet, sorted by worker id.
type Query struct {
	// State keeps the workers in this state (one of States, any case);
	// "" keeps all, invalid ones included.
	State string
	// Prefix keeps the workers whose id starts with it; "" keeps all.
	Prefix string
	// Limit is how many workers a page holds at most: 1 to MaxPageSize;
	// 0 means DefaultPageSize.
	Limit int
	// Cursor is the Next of the previous page; "" for the first page.
	Cursor string
}

// QueryError reports a field of a Query that is wrong. Field is the name
// of the API's parameter: "state" or "limit".
type QueryError struct {
	Field, Value, Want string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("fleet: query: %s %q: want %s", e.Field, e.Value, e.Want)
}

// check normalises q and returns a *QueryError for what is wrong.
func (q Query) check() (Query, error) {
	if q.Limit == 0 {
		q.Limit = DefaultPageSize
	}
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return q, &QueryError{"limit", strconv.Itoa(q.Limit), fmt.Sprintf("1 to %d", MaxPageSize)}
	}
	if q.State != "" {
		st, err := heartbeat.ParseState(q.State)
		if err != nil {
			return q, &QueryError{"state", q.State, "one of " + strings.Join(States, ", ")}
		}
		q.State = st.String()
	}
	return q, nil
}

// Page is one page of the fleet.
type Page struct {
	GeneratedAt time.Time // Redis's time of the read
	Summary     Summary   // of the whole fleet, not of the page
	Workers     []Worker  // sorted by id
	// Next is the cursor of the following page; "" when this is the last.
	// It is the last id of this page, but callers should pass it back as
	// it is.
	Next string
}

// Page returns the workers q selects, at most q.Limit of them, with the
// fleet's Summary. When every indexed worker keeps the derived keys
// (heartbeat.Options.StateIndex), it reads the ids of the page from
// worker:states{worker:index} (ZRANGE BYLEX) and only the page's hashes: a few round
// trips, whatever the fleet's size. Otherwise it reads every id of the
// index and, with a State, hashes in order until the page is full.
//
// A page may hold fewer than q.Limit workers while Next is not "": a
// worker that left between the reads is not listed. Page returns an error
// naming the field of q that is wrong, a *QueryError.
func (r *Reader) Page(ctx context.Context, q Query) (Page, error) {
	q, err := q.check()
	if err != nil {
		return Page{}, err
	}
	// The counts and the ids of the page in one round trip; the ids are
	// of use only if every worker keeps the derived keys.
	pipe := r.rdb.Pipeline()
	countCmd := r.evalSummary(ctx, pipe)
	var ranges []*redis.StringSliceCmd
	for _, st := range States {
		if q.State == "" || q.State == st {
			ranges = append(ranges, pipe.ZRangeArgs(ctx, lexRange(st, q)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return Page{}, fmt.Errorf("fleet: read %s: %w", heartbeat.StatesKey, err)
	}
	c, err := parseCounts(countCmd)
	if err != nil {
		return Page{}, err
	}
	p := Page{GeneratedAt: c.now}
	if p.Summary, err = r.summarize(ctx, c); err != nil {
		return Page{}, err
	}
	if c.unmaintained() > 0 || r.o.StaleFactor != heartbeat.StaleFactor || r.o.Now != nil {
		p.Workers, p.Next, err = r.scanPage(ctx, q)
		return p, err
	}
	var ids []string
	for _, cmd := range ranges {
		for _, m := range cmd.Val() {
			if _, id, ok := strings.Cut(m, ":"); ok {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids) // a worker seen in two states while it changed
	if len(ids) > q.Limit {
		ids = ids[:q.Limit]
		p.Next = ids[len(ids)-1]
	}
	b, err := r.readAll(ctx, ids, c.now)
	if err != nil {
		return Page{}, err
	}
	r.settle(ctx, &b)
	p.Workers = b.workers
	return p, nil
}

// lexRange is the ZRANGE BYLEX of worker:states{worker:index} for the ids of state st
// that q selects, one more than a page so that the caller knows whether
// another page follows.
func lexRange(st string, q Query) redis.ZRangeArgs {
	lo := "[" + heartbeat.StateMember(st, q.Prefix)
	if q.Cursor != "" && q.Cursor >= q.Prefix {
		lo = "(" + heartbeat.StateMember(st, q.Cursor)
	}
	hi := "(" + st + ";" // ';' follows ':': past every member of st
	if next, ok := successor(q.Prefix); ok {
		hi = "(" + heartbeat.StateMember(st, next)
	}
	return redis.ZRangeArgs{Key: heartbeat.StatesKey, Start: lo, Stop: hi, ByLex: true, Count: int64(q.Limit) + 1}
}

// successor returns the least string greater than every string that starts
// with prefix, and false when there is none (an empty prefix, or one of
// 0xff bytes only).
func successor(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// scanPage is Page for a fleet where some workers do not keep the derived
// keys: every id of the index, then the hashes in order, a page at a time,
// until the page is full.
func (r *Reader) scanPage(ctx context.Context, q Query) ([]Worker, string, error) {
	now, all, err := r.index(ctx)
	if err != nil {
		return nil, "", err
	}
	ids := all[:0]
	for _, id := range all {
		if strings.HasPrefix(id, q.Prefix) && id > q.Cursor {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var page []Worker
	for start := 0; start < len(ids) && len(page) <= q.Limit; start += q.Limit + 1 {
		b, err := r.readAll(ctx, ids[start:min(start+q.Limit+1, len(ids))], now)
		if err != nil {
			return nil, "", err
		}
		r.settle(ctx, &b)
		for _, w := range b.workers {
			if q.State == "" || (w.Health != Invalid && w.State == q.State) {
				page = append(page, w)
			}
		}
	}
	next := ""
	if len(page) > q.Limit {
		page = page[:q.Limit]
		next = page[len(page)-1].WorkerID
	}
	return page, next, nil
}

// MarshalJSON writes the page as GET /api/fleet serves it with the page
// parameters: the Fleet's keys, and "next_cursor" ("" on the last page).
func (p Page) MarshalJSON() ([]byte, error) {
	ws := p.Workers
	if ws == nil {
		ws = []Worker{}
	}
	return json.Marshal(struct {
		GeneratedAt float64  `json:"generated_at"`
		Summary     Summary  `json:"summary"`
		Workers     []Worker `json:"workers"`
		NextCursor  string   `json:"next_cursor"`
	}{unixSeconds(p.GeneratedAt), p.Summary, ws, p.Next})
}
