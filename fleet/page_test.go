package fleet_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/internal/redistest"
)

// writeIndexed writes n beats as Go workers do (heartbeat.Write with the
// state index): ids g-000 and on, states in turn; every 10th beat 60 s
// old (stale at a 30 s interval), and every 20th of those gone (its hash
// deleted, as if it had expired, its index entries left behind).
func writeIndexed(t *testing.T, rdb *redis.Client, n int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	states := []string{"IDLE", "BUSY", "IDLE", "STARTING", "STOPPING"}
	for i := range n {
		s := heartbeat.Status{Identity: heartbeat.Identity{WorkerID: fmt.Sprintf("g-%03d", i), Service: "worker"},
			State: states[i%len(states)], Timestamp: now, Interval: 30 * time.Second}
		if i%10 == 9 {
			s.Timestamp = now.Add(-60 * time.Second)
		}
		if err := heartbeat.Write(ctx, rdb, s, heartbeat.Options{StateIndex: true}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			rdb.Del(ctx, heartbeat.KeyPrefix+s.WorkerID)
		}
	}
}

// pageAll follows the cursor from the first page to the last.
func pageAll(t *testing.T, r *fleet.Reader, q fleet.Query) (ids []string, pages int) {
	t.Helper()
	for {
		p, err := r.Page(context.Background(), q)
		if err != nil {
			t.Fatalf("Page(%+v): %v", q, err)
		}
		if len(p.Workers) > q.Limit {
			t.Fatalf("Page(%+v): %d workers, more than the limit", q, len(p.Workers))
		}
		for _, w := range p.Workers {
			ids = append(ids, w.WorkerID)
		}
		pages++
		if p.Next == "" {
			return ids, pages
		}
		if pages > 1000 {
			t.Fatalf("Page(%+v): more than 1000 pages", q)
		}
		q.Cursor = p.Next
	}
}

// checkAgainstList compares Summary and every kind of Page with what List
// reads of the same fleet.
func checkAgainstList(t *testing.T, r *fleet.Reader, f fleet.Fleet) {
	t.Helper()
	s, _, err := r.Summary(context.Background())
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	if fmt.Sprint(s) != fmt.Sprint(f.Summary) {
		t.Errorf("Summary:\n got %+v\nwant %+v (List's)", s, f.Summary)
	}
	for _, q := range []fleet.Query{
		{Limit: 7}, {Limit: 1000}, {Limit: 1, Prefix: "g-01"}, {Limit: 3, Prefix: "py"},
		{Limit: 5, State: "idle"}, {Limit: 4, State: "STARTING", Prefix: "g-0"}, {Limit: 10, State: "STOPPED"},
		{Limit: 6, Cursor: "g-100"}, {Limit: 2, Prefix: "g-1", Cursor: "g-0"}, {Limit: 2, Prefix: "g-1", Cursor: "g-2"},
	} {
		var want []string
		for _, w := range f.Workers {
			if strings.HasPrefix(w.WorkerID, q.Prefix) && w.WorkerID > q.Cursor &&
				(q.State == "" || (w.Health != fleet.Invalid && strings.EqualFold(w.State, q.State))) {
				want = append(want, w.WorkerID)
			}
		}
		got, pages := pageAll(t, r, q)
		if !slices.Equal(got, want) {
			t.Errorf("pages of %+v:\n got %v\nwant %v", q, got, want)
		}
		if wantPages := max(1, (len(want)+q.Limit-1)/q.Limit); pages != wantPages && pages != wantPages+1 {
			t.Errorf("pages of %+v: got %d, want %d", q, pages, wantPages)
		}
	}
}

func TestSummaryAndPages(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	now := redisNow(t, rdb)
	writeIndexed(t, rdb, 250, now)
	r := fleet.NewReader(rdb, fleet.Options{})

	// Summary alone prunes the gone workers, from the index and the
	// derived keys.
	s, at, err := r.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 238 || s.Stale != 13 || s.Alive != 225 || s.ByState["STOPPING"] != 25 {
		t.Errorf("Summary: got %+v, want 238 workers, 225 alive (25 STOPPING), 13 stale", s)
	}
	if d := at.Sub(now); d < 0 || d > 10*time.Second {
		t.Errorf("Summary's time %v is not Redis's (%v)", at, now)
	}
	for _, key := range []string{heartbeat.IndexKey, heartbeat.DeadlineKey, heartbeat.StatesKey} {
		if n := rdb.ZCard(context.Background(), key).Val(); n != 238 {
			t.Errorf("ZCARD %s after Summary: got %d, want 238 (the gone pruned)", key, n)
		}
	}
	checkAgainstList(t, r, list(t, r))

	// Workers that do not keep the derived keys, written with redis-cli
	// as a worker in another language writes them: read hash by hash.
	writeBeat(t, srv, beat{id: "py-1", at: now})
	writeBeat(t, srv, beat{id: "py-2", state: "BUSY", at: now})
	writeBeat(t, srv, beat{id: "py-3", state: "BUSY", at: now.Add(-time.Minute)})
	writeBeat(t, srv, beat{id: "g-1000", state: "STARTING", at: now})
	rdb.HSet(context.Background(), heartbeat.KeyPrefix+"py-4", "worker_id", "py-4", "state", "RUNNING")
	rdb.ZAdd(context.Background(), heartbeat.IndexKey, redis.Z{Score: 1, Member: "py-4"})
	rdb.ZAdd(context.Background(), heartbeat.IndexKey, redis.Z{Score: 1, Member: "py-gone"})
	f := list(t, r) // prunes py-gone
	if f.Summary.Total != 243 || f.Summary.Invalid != 1 || f.Summary.Stale != 14 {
		t.Fatalf("List: got %+v, want 243 workers, 1 invalid, 14 stale", f.Summary)
	}
	rdb.ZAdd(context.Background(), heartbeat.IndexKey, redis.Z{Score: 1, Member: "py-gone"})
	checkAgainstList(t, r, f)
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	r := fleet.NewReader(srv.Client(t), fleet.Options{})
	for _, q := range []fleet.Query{{Limit: -1}, {Limit: fleet.MaxPageSize + 1}, {State: "RUNNING"}} {
		if _, err := r.Page(context.Background(), q); err == nil {
			t.Errorf("Page(%+v): got nil error", q)
		}
	}
	p, err := r.Page(context.Background(), fleet.Query{})
	if err != nil || len(p.Workers) != 0 || p.Next != "" || p.Summary.Total != 0 {
		t.Errorf("Page of an empty fleet: got %+v, %v", p, err)
	}
}

func TestAPIPages(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	writeIndexed(t, rdb, 20, redisNow(t, rdb))
	base := mountAPI(t, fleet.NewReader(rdb, fleet.Options{}))

	code, _, body := fetch(t, base+"/api/fleet?limit=5&prefix=g-00")
	var page struct {
		Summary    fleet.Summary    `json:"summary"`
		Workers    []map[string]any `json:"workers"`
		NextCursor string           `json:"next_cursor"`
	}
	mustUnmarshal(t, body, &page)
	if code != http.StatusOK || len(page.Workers) != 5 || page.NextCursor != "g-004" || page.Summary.Total != 19 {
		t.Fatalf("GET /api/fleet?limit=5&prefix=g-00: %d, %d workers, next %q, summary %+v; want 200, 5, g-004, 19 workers (g-019 gone)",
			code, len(page.Workers), page.NextCursor, page.Summary)
	}
	code, _, body = fetch(t, base+"/api/fleet?limit=5&prefix=g-00&cursor="+page.NextCursor)
	page.Workers = nil
	mustUnmarshal(t, body, &page)
	if code != http.StatusOK || len(page.Workers) != 5 || page.Workers[0]["worker_id"] != "g-005" || page.NextCursor != "" {
		t.Errorf("second page: %d, %v, next %q; want 200, g-005 to g-009, no next", code, page.Workers, page.NextCursor)
	}
	code, _, body = fetch(t, base+"/api/fleet?state=BUSY")
	page.Workers = nil
	mustUnmarshal(t, body, &page)
	if code != http.StatusOK || len(page.Workers) != 4 {
		t.Errorf("GET /api/fleet?state=BUSY: %d, %d workers; want 200, 4", code, len(page.Workers))
	}

	for _, tt := range []struct{ query, naming string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"}, {"state=RUNNING", "state"},
	} {
		code, _, body := fetch(t, base+"/api/fleet?"+tt.query)
		if code != http.StatusBadRequest {
			t.Errorf("GET /api/fleet?%s: status %d, want 400", tt.query, code)
		}
		errorNaming(tt.naming)(t, body)
	}

	code, _, body = fetch(t, base+"/api/fleet/summary")
	var sum struct {
		GeneratedAt float64       `json:"generated_at"`
		Summary     fleet.Summary `json:"summary"`
	}
	mustUnmarshal(t, body, &sum)
	if code != http.StatusOK || sum.Summary.Total != 19 || sum.Summary.Stale != 1 || sum.GeneratedAt == 0 {
		t.Errorf("GET /api/fleet/summary: %d, %+v", code, sum)
	}
}

// TestAPIPagedEvents follows the event stream of one page.
func TestAPIPagedEvents(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	writeIndexed(t, rdb, 20, redisNow(t, rdb))
	base := mountAPI(t, fleet.NewReader(rdb, fleet.Options{}))

	if code, _, body := fetch(t, base+"/api/fleet/events?state=RUNNING"); code != http.StatusBadRequest {
		t.Errorf("events with a bad state: status %d, want 400: %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/fleet/events?limit=3&cursor=g-010", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev, err := readEvent(bufio.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Summary    fleet.Summary    `json:"summary"`
		Workers    []map[string]any `json:"workers"`
		NextCursor string           `json:"next_cursor"`
	}
	mustUnmarshal(t, []byte(ev.data), &page)
	if ev.name != "fleet" || len(page.Workers) != 3 || page.NextCursor != "g-013" || page.Summary.Total != 19 {
		t.Errorf("first event: %s with %d workers, next %q, %d in the fleet; want fleet, 3, g-013, 19", ev.name, len(page.Workers), page.NextCursor, page.Summary.Total)
	}
}
