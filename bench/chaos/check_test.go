package main

import (
	"encoding/json"
	"testing"
)

// TestJudge checks that the checks catch each kind of untrue answer, so a
// clean run of the harness means something.
func TestJudge(t *testing.T) {
	ok := jobInfo{found: true, Status: "succeeded", Result: json.RawMessage(`{"marker":"m"}`)}
	tests := []struct {
		name      string
		answers   []answer
		lookups   []lookup
		mapping   string   // the job id Redis holds for the key
		all       []string // job ids Redis or the logs know
		infos     map[string]jobInfo
		runs      map[string]*runs
		wantWrong int
		wantLost  int
		wantDup   [2]int // duplicated, of which mid-run on a killed worker
	}{
		{name: "202, then succeeded", answers: []answer{{kind: queued, id: "a"}}, mapping: "a",
			all: []string{"a"}, infos: map[string]jobInfo{"a": ok}},
		{name: "202 whose id is not found", answers: []answer{{kind: queued, id: "a"}}, mapping: "a",
			infos: map[string]jobInfo{"a": {}}, wantWrong: 1},
		{name: "refused, then replayed", answers: []answer{{kind: refused, code: 503}, {kind: replayed, id: "a"}},
			mapping: "a", all: []string{"a"}, infos: map[string]jobInfo{"a": ok}, wantWrong: 1},
		{name: "unknown, then replayed", answers: []answer{{kind: unknown, id: "a"}, {kind: replayed, id: "a"}},
			mapping: "a", all: []string{"a"}, infos: map[string]jobInfo{"a": ok}},
		{name: "no answer, then replayed", answers: []answer{{kind: noAnswer}, {kind: replayed, id: "a"}},
			mapping: "a", all: []string{"a"}, infos: map[string]jobInfo{"a": ok}},
		{name: "unknown id queued beside the accepted one", answers: []answer{{kind: unknown, id: "x"}, {kind: queued, id: "a"}},
			mapping: "a", all: []string{"a", "x"}, infos: map[string]jobInfo{"a": ok, "x": {found: true}}, wantWrong: 1},
		{name: "unknown id found by GET, absent from Redis", answers: []answer{{kind: unknown, id: "x"}, {kind: queued, id: "a"}},
			mapping: "a", all: []string{"a"}, infos: map[string]jobInfo{"a": ok, "x": {found: true}}, wantWrong: 1},
		{name: "unknown id not found, and not queued", answers: []answer{{kind: unknown, id: "x"}, {kind: queued, id: "a"}},
			mapping: "a", all: []string{"a"}, infos: map[string]jobInfo{"a": ok, "x": {}}},
		{name: "unknown, looked up: 404, yet queued", answers: []answer{{kind: unknown, id: "x"}, {kind: replayed, id: "x"}},
			lookups: []lookup{{id: "x"}}, mapping: "x", all: []string{"x"}, infos: map[string]jobInfo{"x": ok}, wantWrong: 1},
		{name: "unknown, looked up: found", answers: []answer{{kind: unknown, id: "x"}},
			lookups: []lookup{{id: "x", found: true}}, mapping: "x", all: []string{"x"}, infos: map[string]jobInfo{"x": ok}},
		{name: "429 given up, yet the key names a job", answers: []answer{{kind: refused, code: 429}},
			mapping: "z", all: []string{"z"}, infos: map[string]jobInfo{"z": ok}, wantWrong: 1},
		{name: "unknown, given up, found later", answers: []answer{{kind: unknown, id: "a"}},
			mapping: "a", all: []string{"a"}, infos: map[string]jobInfo{"a": ok}},
		{name: "key names another job", answers: []answer{{kind: queued, id: "a"}},
			mapping: "b", all: []string{"a", "b"}, infos: map[string]jobInfo{"a": ok}, wantWrong: 1},
		{name: "accepted, never finished", answers: []answer{{kind: queued, id: "a"}}, mapping: "a",
			all: []string{"a"}, infos: map[string]jobInfo{"a": {found: true, Status: "queued"}}, wantLost: 1},
		{name: "wrong result", answers: []answer{{kind: queued, id: "a"}}, mapping: "a", all: []string{"a"},
			infos: map[string]jobInfo{"a": {found: true, Status: "succeeded", Result: json.RawMessage(`{"marker":"n"}`)}}, wantWrong: 1},
		{name: "run again after a SIGKILL mid-run", answers: []answer{{kind: queued, id: "a"}}, mapping: "a",
			all: []string{"a"}, infos: map[string]jobInfo{"a": ok},
			runs: map[string]*runs{"a": {started: 2, succeeded: 1, killedMid: true}}, wantDup: [2]int{1, 1}},
		{name: "run twice without a kill", answers: []answer{{kind: queued, id: "a"}}, mapping: "a",
			all: []string{"a"}, infos: map[string]jobInfo{"a": ok},
			runs: map[string]*runs{"a": {started: 2, succeeded: 2}}, wantDup: [2]int{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &submission{key: "k", typ: "echo", marker: "m", sent: true, answers: tt.answers, lookups: tt.lookups}
			if last := tt.answers[len(tt.answers)-1]; last.kind == queued || last.kind == replayed {
				s.id = last.id
			}
			tr := truth{mapping: map[string]string{}, all: map[string]bool{}}
			if tt.mapping != "" {
				tr.mapping["k"] = tt.mapping
			}
			for _, id := range tt.all {
				tr.all[id] = true
			}
			logs := logReport{jobs: tt.runs}
			if logs.jobs == nil {
				logs.jobs = map[string]*runs{}
			}
			var r row
			(&checker{}).judge(&r, s, tr, tt.infos, logs, nil)
			if r.wrong != tt.wantWrong || r.lost != tt.wantLost || [2]int{r.duplicated, r.dupKilled} != tt.wantDup {
				t.Errorf("wrong %d, lost %d, duplicated %d (%d killed); want %d, %d, %v; problems: %q",
					r.wrong, r.lost, r.duplicated, r.dupKilled, tt.wantWrong, tt.wantLost, tt.wantDup, r.problems)
			}
		})
	}
}
