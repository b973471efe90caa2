package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
)

// summaryScript counts the fleet from the index and the derived keys,
// without reading a hash, in one atomic step on Redis's clock: TIME, the
// index's size, the deadline set's size (the workers that keep the derived
// keys), each state's count in the states set, and the workers whose
// deadline has passed, each with its state. KEYS: the index, the deadline
// set, the states set; ARGV: the state names.
var summaryScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local out = {t[1], t[2], redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
for _, st in ipairs(ARGV) do
	out[#out + 1] = redis.call('ZLEXCOUNT', KEYS[3], '[' .. st .. ':', '(' .. st .. ';')
end
local late = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%.6f', now))
for _, id in ipairs(late) do
	local state = ''
	for _, st in ipairs(ARGV) do
		if redis.call('ZSCORE', KEYS[3], st .. ':' .. id) then
			state = st
			break
		end
	end
	out[#out + 1] = id
	out[#out + 1] = state
end
return out`)

var summaryKeys = []string{heartbeat.IndexKey, heartbeat.DeadlineKey, heartbeat.StatesKey}

// counts is what summaryScript read.
type counts struct {
	now        time.Time
	indexed    int64            // ZCARD worker:index
	maintained int64            // ZCARD worker:deadline{worker:index}: workers that keep the derived keys
	byState    map[string]int64 // members of worker:states{worker:index} by state, alive or not
	late       []lateWorker     // past their deadline: stale, or gone with their hash
}

type lateWorker struct{ id, state string }

// unmaintained is how many indexed workers do not keep the derived keys:
// they must be read hash by hash.
func (c counts) unmaintained() int64 { return c.indexed - c.maintained }

func (r *Reader) evalSummary(ctx context.Context, p redis.Scripter) *redis.Cmd {
	args := make([]any, len(States))
	for i, st := range States {
		args[i] = st
	}
	// EVAL, not EVALSHA: a NOSCRIPT inside a pipeline cannot fall back.
	return summaryScript.Eval(ctx, p, summaryKeys, args...)
}

func parseCounts(cmd *redis.Cmd) (counts, error) {
	raw, err := cmd.Slice()
	if err != nil {
		return counts{}, fmt.Errorf("fleet: count the fleet: %w", err)
	}
	n := 4 + len(States)
	if len(raw) < n || (len(raw)-n)%2 != 0 {
		return counts{}, fmt.Errorf("fleet: count the fleet: %d values in the answer", len(raw))
	}
	sec, _ := strconv.ParseInt(fmt.Sprint(raw[0]), 10, 64)
	usec, _ := strconv.ParseInt(fmt.Sprint(raw[1]), 10, 64)
	c := counts{now: time.Unix(sec, usec*1000).UTC(), byState: make(map[string]int64, len(States))}
	c.indexed, _ = raw[2].(int64)
	c.maintained, _ = raw[3].(int64)
	for i, st := range States {
		c.byState[st], _ = raw[4+i].(int64)
	}
	for i := n; i < len(raw); i += 2 {
		id, _ := raw[i].(string)
		state, _ := raw[i+1].(string)
		c.late = append(c.late, lateWorker{id, state})
	}
	return c, nil
}

// Summary counts the fleet as List's Summary does, and returns it with
// Redis's time, without reading every hash: one script counts the workers
// that keep the derived keys (heartbeat.Options.StateIndex,
// docs/wire-format.md) by state and by deadline, and only the hashes of
// workers past their deadline (to tell stale from gone) and of workers
// that do not keep the derived keys (a writer in another language) are
// read. A fleet of such writers only is read in full, as List reads it.
//
// Counting trusts the writers' clocks, as the index does; List also
// corrects for a clock that runs ahead. With a StaleFactor other than the
// wire format's, Summary is List's.
func (r *Reader) Summary(ctx context.Context) (Summary, time.Time, error) {
	if r.o.StaleFactor != heartbeat.StaleFactor || r.o.Now != nil {
		f, err := r.List(ctx)
		return f.Summary, f.GeneratedAt, err
	}
	c, err := parseCounts(r.evalSummary(ctx, r.rdb))
	if err != nil {
		return Summary{}, time.Time{}, err
	}
	s, err := r.summarize(ctx, c)
	return s, c.now, err
}

// summarize turns the counts into a Summary: it reads whether the late
// workers' hashes still exist (pruning those that do not) and judges the
// workers that do not keep the derived keys from their hashes.
func (r *Reader) summarize(ctx context.Context, c counts) (Summary, error) {
	s := Summary{ByState: make(map[string]int, len(States))}
	for st, n := range c.byState {
		s.ByState[st] = int(n)
	}
	s.Total = int(c.maintained)
	s.Alive = int(c.maintained) - len(c.late)
	gone, err := r.missing(ctx, c.late)
	if err != nil {
		return Summary{}, err
	}
	var pruned []string
	for i, l := range c.late {
		s.ByState[l.state]-- // counted in its state, not alive
		if gone[i] {
			s.Total--
			pruned = append(pruned, l.id)
			continue
		}
		s.Stale++
	}
	delete(s.ByState, "") // a late worker whose state member is missing
	if c.unmaintained() > 0 {
		others, err := r.readUnmaintained(ctx, c.now)
		if err != nil {
			return Summary{}, err
		}
		r.settle(ctx, &others)
		o := summarize(others.workers)
		s.Total += o.Total
		s.Alive += o.Alive
		s.Stale += o.Stale
		s.Invalid += o.Invalid
		for st, n := range o.ByState {
			s.ByState[st] += n
		}
	}
	_, _ = r.prune(ctx, pruned) // housekeeping: the next read tries again
	return s, nil
}

// missing reports, for each late worker, whether its hash is gone.
func (r *Reader) missing(ctx context.Context, late []lateWorker) ([]bool, error) {
	gone := make([]bool, len(late))
	for start := 0; start < len(late); start += r.o.BatchSize {
		end := min(start+r.o.BatchSize, len(late))
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, end-start)
		for i := range cmds {
			cmds[i] = pipe.Exists(ctx, heartbeat.KeyPrefix+late[start+i].id)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("fleet: read heartbeats: %w", err)
		}
		for i, cmd := range cmds {
			gone[start+i] = cmd.Val() == 0
		}
	}
	return gone, nil
}

// readUnmaintained reads and judges the workers in the index that do not
// keep the derived keys (ZDIFF worker:index worker:deadline{worker:index}, done by
// Redis).
func (r *Reader) readUnmaintained(ctx context.Context, now time.Time) (batch, error) {
	ids, err := r.rdb.ZDiff(ctx, heartbeat.IndexKey, heartbeat.DeadlineKey).Result()
	if err != nil {
		return batch{}, fmt.Errorf("fleet: read %s: %w", heartbeat.IndexKey, err)
	}
	return r.readAll(ctx, ids, now)
}
