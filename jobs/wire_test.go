package jobs

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/logging/logtest"
)

const wireDoc = "../docs/wire-format.md"

// docBlock returns the lines of the first ```<lang> block in the "Job
// queue" section of docs/wire-format.md.
func docBlock(t *testing.T, lang string) []string {
	t.Helper()
	doc, err := os.ReadFile(wireDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Job queue\n")
	if !ok {
		t.Fatalf("%s: no \"## Job queue\" section", wireDoc)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```"+lang+"\n")
	if !ok {
		t.Fatalf("%s, Job queue: no ```%s block", wireDoc, lang)
	}
	block, _, _ = strings.Cut(block, "```")
	return strings.Split(strings.TrimSpace(block), "\n")
}

// words splits a command line into words as a shell or redis-cli does for
// the doc's lines: spaces separate, 'single quotes' keep a JSON value whole.
func words(line string) []string {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '\'' {
			w, rest, _ := strings.Cut(line[1:], "'")
			out, line = append(out, w), rest
			continue
		}
		w, rest, _ := strings.Cut(line, " ")
		out, line = append(out, w), rest
	}
	return out
}

// TestHandWrittenJob enqueues a job with the plain commands of
// docs/wire-format.md, as a producer in another language would, and a
// consumer runs it.
func TestHandWrittenJob(t *testing.T) {
	srv, rdb := newRedis(t)
	ctx := context.Background()
	for _, line := range docBlock(t, "redis") {
		args := words(line)
		cmd := make([]any, len(args))
		for i, a := range args {
			cmd[i] = a
		}
		if err := rdb.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	entries := rdb.XRange(ctx, "jobs:default", "-", "+").Val()
	if len(entries) != 1 {
		t.Fatalf("stream = %v, want the one entry", entries)
	}
	job, err := decode(entries[0].Values)
	if err != nil {
		t.Fatalf("Decode(entry written by hand): %v", err)
	}
	q := NewQueue(rdb, "", QueueOptions{})
	if info, err := q.Get(ctx, job.ID); err != nil || info.Status != StatusQueued || info.Type != "echo" {
		t.Fatalf("Get(%s) = %+v, %v; want queued, type echo", job.ID, info, err)
	}
	mux := NewMux()
	Builtins(mux, nil)
	startConsumer(t, rdb, "", "worker-1", mux, testOptions(logtest.NewRecorder()))
	done := waitStatus(t, q, job.ID, StatusSucceeded)
	if !jsonEqual(t, done.Result, []byte(`{"hello":"world"}`)) {
		t.Errorf("Result = %s, want the payload", done.Result)
	}
	t.Run("debug commands", func(t *testing.T) { runDebugCommands(t, srv, job.ID) })
}

// runDebugCommands runs the doc's redis-cli debug commands, with the
// example job id replaced by id, and checks Redis accepts them.
func runDebugCommands(t *testing.T, srv *redistest.Server, id string) {
	t.Helper()
	ran := 0
	for _, line := range docBlock(t, "bash") {
		args := words(line)
		if len(args) == 0 || args[0] != "redis-cli" {
			continue
		}
		for i, a := range args {
			if strings.HasPrefix(a, "job:") {
				args[i] = "job:" + id
			}
		}
		srv.CLI(t, "", args[1:]...)
		ran++
	}
	if ran == 0 {
		t.Errorf("no redis-cli lines in the doc's bash block")
	}
}
