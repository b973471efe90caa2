package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// row is one scenario's outcome, counted per submission (one job, one
// Idempotency-Key) except where it says answers.
type row struct {
	name         string
	submitted    int
	accepted     int // final 202 or 200, or an "unknown" id found later
	refused      int // refusals answered (429, 503 without an id), each retried
	succeeded    int
	failed       int
	lost         int // accepted, yet neither succeeded nor failed after the drain
	duplicated   int // started more than once
	dupKilled    int // of which a run began on a worker killed with SIGKILL and did not end there
	wrong        int // submissions given at least one untrue answer, plus jobs no submission accounts for
	gaveUp       int // never accepted within the client's budget
	unknowns     int // 503 answers with an id
	replays      int // accepted by a replay: a request answered "unknown" or not at all had queued it
	lookups      int // GET /api/jobs/{id} after an "unknown" answer
	lookupsWrong int
	noAnswers    int // transport errors and client timeouts
	slowest      time.Duration
	notes        []string
	problems     []string
}

// checker compares what the clients were told with what happened: the
// job API's lookups, Redis's keys, and the workers' logs.
type checker struct {
	c     *client
	rdb   *redis.Client
	queue string
	known map[string]bool // job ids earlier scenarios accounted for
}

func (k *checker) problem(r *row, s *submission, format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf("key %s: %s; answers: %s", s.key, fmt.Sprintf(format, args...), describe(s.answers)))
}

func describe(as []answer) string {
	parts := make([]string, 0, len(as))
	for _, a := range as {
		p := fmt.Sprintf("%s %d", a.kind, a.code)
		if a.id != "" {
			p += " " + a.id
		}
		if a.kind == noAnswer {
			p += " (" + a.err + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// check judges one scenario's submissions once its queue has drained.
func (k *checker) check(ctx context.Context, name string, subs []*submission, logs logReport) (row, error) {
	r := row{name: name}
	truth, err := k.redisTruth(ctx, subs, logs)
	if err != nil {
		return r, err
	}
	extra := k.phantoms(ctx, &r, subs, truth, logs)
	infos := k.lookups(ctx, subs)
	for _, s := range subs {
		if !s.sent {
			continue
		}
		r.submitted++
		k.judge(&r, s, truth, infos, logs, extra[s])
	}
	for id := range truth.all {
		k.known[id] = true
	}
	return r, nil
}

// truth is what Redis holds after the drain.
type truth struct {
	mapping map[string]string // idempotency key -> job id
	all     map[string]bool   // every job id in Redis or in a worker's log
}

func (k *checker) redisTruth(ctx context.Context, subs []*submission, logs logReport) (truth, error) {
	t := truth{mapping: map[string]string{}, all: map[string]bool{}}
	pipe := k.rdb.Pipeline()
	cmds := map[string]*redis.StringCmd{}
	for _, s := range subs {
		if s.sent {
			cmds[s.key] = pipe.Get(ctx, "jobs:"+k.queue+":idempotency:"+s.key)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return t, fmt.Errorf("read idempotency keys: %w", err)
	}
	for key, c := range cmds {
		if id, err := c.Result(); err == nil {
			t.mapping[key] = id
		}
	}
	iter := k.rdb.Scan(ctx, 0, "job:*", 1000).Iterator()
	for iter.Next(ctx) {
		// job:<id> is the job's hash; job:<id>:<what> are its companions.
		if id := strings.TrimPrefix(iter.Val(), "job:"); !strings.Contains(id, ":") {
			t.all[id] = true
		}
	}
	if err := iter.Err(); err != nil {
		return t, fmt.Errorf("scan job hashes: %w", err)
	}
	for id := range logs.jobs {
		t.all[id] = true
	}
	return t, nil
}

// phantoms finds the jobs that exist (a hash in Redis, or a run in a log)
// though no final answer named them, and ties each to its submission by
// an "unknown" id or by the echo marker in its result. Each is a job
// queued behind an answer that said otherwise.
func (k *checker) phantoms(ctx context.Context, r *row, subs []*submission, t truth, logs logReport) map[*submission][]string {
	byID, byMarker := map[string]*submission{}, map[string]*submission{}
	for _, s := range subs {
		for _, a := range s.answers {
			if a.id != "" {
				byID[a.id] = s
			}
		}
		if s.marker != "" {
			byMarker[s.marker] = s
		}
	}
	extra := map[*submission][]string{}
	for id := range t.all {
		if k.known[id] {
			continue
		}
		if s := byID[id]; s != nil {
			if id != s.id && t.mapping[s.key] != id {
				extra[s] = append(extra[s], id)
			}
			continue
		}
		var res struct {
			Marker string `json:"marker"`
		}
		raw, _ := k.rdb.HGet(ctx, "job:"+id, "result").Result()
		if json.Unmarshal([]byte(raw), &res) == nil && byMarker[res.Marker] != nil {
			extra[byMarker[res.Marker]] = append(extra[byMarker[res.Marker]], id)
			continue
		}
		r.wrong++
		r.problems = append(r.problems, fmt.Sprintf("job %s exists (runs logged: %d) but no answer named it", id, starts(logs, id)))
	}
	return extra
}

func starts(logs logReport, id string) int {
	if j := logs.jobs[id]; j != nil {
		return j.started
	}
	return 0
}

// lookups asks the job API about every id a submission was given.
func (k *checker) lookups(ctx context.Context, subs []*submission) map[string]jobInfo {
	ids := map[string]bool{}
	for _, s := range subs {
		for _, a := range s.answers {
			if a.id != "" {
				ids[a.id] = true
			}
		}
	}
	var (
		mu    sync.Mutex
		infos = map[string]jobInfo{}
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 8)
	)
	for id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			info, err := k.c.lookup(ctx, id)
			if err != nil {
				info.Status = "lookup failed: " + err.Error()
			}
			mu.Lock()
			infos[id] = info
			mu.Unlock()
		})
	}
	wg.Wait()
	return infos
}

// judge counts one submission and records every untrue answer it got.
func (k *checker) judge(r *row, s *submission, t truth, infos map[string]jobInfo, logs logReport, extra []string) {
	wrong := false
	bad := func(format string, args ...any) {
		wrong = true
		k.problem(r, s, format, args...)
	}
	unknownIDs := map[string]bool{}
	retriedBlind := false // an earlier request may have queued the job unseen
	r.lookups += len(s.lookups)
	for i, a := range s.answers {
		r.slowest = max(r.slowest, a.took)
		switch a.kind {
		case refused:
			r.refused++
		case unknown:
			r.unknowns++
			unknownIDs[a.id] = true
		case noAnswer:
			r.noAnswers++
		case replayed:
			r.replays++
			if !retriedBlind {
				bad("answer %d replays %s, but no earlier answer left the job possibly queued", i+1, a.id)
			}
		}
		retriedBlind = retriedBlind || a.kind == unknown || a.kind == noAnswer
	}
	id, mapped := s.id, t.mapping[s.key]
	if id == "" && mapped != "" {
		if !retriedBlind {
			bad("refused, yet the key names job %s", mapped)
		}
		id = mapped // "unknown", then found
	}
	if id != "" && mapped != id {
		bad("accepted as %s, but the key names %q", id, mapped)
	}
	k.judgeOutcome(r, s, id, infos, bad)
	for x := range unknownIDs {
		if x == id {
			continue
		}
		real := t.all[x]
		if real {
			bad("told unknown %s, which was queued beside %s", x, id)
		}
		if found := infos[x].found; found != real {
			bad("GET /api/jobs/%s says found=%v; Redis and the logs say %v", x, found, real)
		}
	}
	for _, l := range s.lookups {
		if l.found != t.all[l.id] {
			r.lookupsWrong++
			bad("told unknown %s, then GET /api/jobs/%s said found=%v; Redis and the logs say queued=%v", l.id, l.id, l.found, t.all[l.id])
		}
	}
	for _, x := range extra {
		if !unknownIDs[x] {
			bad("job %s ran with this job's marker beside %s", x, id)
		}
	}
	n := starts(logs, id)
	for _, x := range extra {
		n += starts(logs, x)
	}
	if n > 1 {
		r.duplicated++
		if j := logs.jobs[id]; j != nil && j.killedMid && len(extra) == 0 {
			r.dupKilled++
		} else {
			r.problems = append(r.problems, fmt.Sprintf("key %s: job %s started %d times, not after a SIGKILL mid-run", s.key, id, n))
		}
	}
	if wrong {
		r.wrong++
	}
}

// judgeOutcome counts an accepted job's end and checks an echo's result.
func (k *checker) judgeOutcome(r *row, s *submission, id string, infos map[string]jobInfo, bad func(string, ...any)) {
	if id == "" {
		r.gaveUp++
		return
	}
	r.accepted++
	info, ok := infos[id]
	if !ok {
		info, _ = k.c.lookup(context.Background(), id)
	}
	switch {
	case !info.found:
		bad("accepted as %s, which GET /api/jobs/%s does not find (%s)", id, id, info.Status)
	case info.Status == "succeeded":
		r.succeeded++
		if s.marker != "" {
			var res struct {
				Marker string `json:"marker"`
			}
			if json.Unmarshal(info.Result, &res) != nil || res.Marker != s.marker {
				bad("job %s succeeded with result %s, want marker %s", id, info.Result, s.marker)
			}
		}
	case info.Status == "failed":
		r.failed++
	default:
		r.lost++
		k.problem(r, s, "lost: job %s is %q after the drain", id, info.Status)
	}
}
