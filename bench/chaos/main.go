// Command chaos runs botfleet as an operator would, a real redis-server,
// the bot and three workers as child processes, and submits jobs through
// the bot's job API while it injects one fault per scenario:
//
//   - kill-9: SIGKILL of a worker that is running a job, restarted after 4 s;
//   - sigterm: SIGTERM of a busy worker (SHUTDOWN_GRACE=5), restarted;
//   - redis-restart: redis-server shut down with SIGTERM, started again 3 s
//     later on the same port and AOF (appendonly yes, appendfsync everysec);
//   - redis-sigstop: redis-server frozen with SIGSTOP for 30 s, then SIGCONT;
//   - backlog: the workers stopped, twice JOB_MAX_BACKLOG submitted (the
//     rest answered 429), the workers started again 15 s later.
//
// Clients follow the README: each job has its own Idempotency-Key; a 503
// (with or without an id) or no answer is retried with the same key, a 429
// after its Retry-After. Once the queue has drained, every job is judged by
// GET /api/jobs/{id}, the idempotency keys in Redis and the workers' logs
// (each run logs "job started"), and each scenario prints one line:
// submitted, accepted, refused, succeeded, failed, lost, duplicated,
// answered wrongly. The exit status is 1 if a job was lost or an answer
// was untrue. docs/reliability.md has the contract and the results.
//
//	cd bench && go run ./chaos                  # all five, about 4 minutes
//	go run ./chaos -only kill-9,backlog -keep   # keep the logs in the temp dir
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/botfleet/botfleet/bench/internal/cli"
)

func main() {
	var h harness
	ctx, stop := cli.Start(h.parseFlags)
	defer stop()
	code, err := h.run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		code = 2
	}
	os.Exit(code)
}

type harness struct {
	repo     string
	only     []string
	keep     bool
	backlog  int
	problems int
}

func (h *harness) parseFlags(args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	only := fs.String("only", "", "comma-separated scenarios to run (kill-9, sigterm, redis-restart, redis-sigstop, backlog); default all")
	fs.StringVar(&h.repo, "repo", "..", "the botfleet module whose ./cmd/botfleet is built")
	fs.BoolVar(&h.keep, "keep", false, "keep the temp dir (logs, AOF) even when every scenario passes")
	fs.IntVar(&h.backlog, "backlog", 300, "JOB_MAX_BACKLOG given to the bot")
	fs.IntVar(&h.problems, "problems", 20, "problem lines printed per scenario")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *only != "" {
		h.only = strings.Split(*only, ",")
	}
	return nil
}

func (h *harness) run(ctx context.Context) (int, error) {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return 0, fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "botfleet-chaos-")
	if err != nil {
		return 0, err
	}
	bin := filepath.Join(dir, "botfleet")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/botfleet")
	build.Dir, build.Stdout, build.Stderr = h.repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("go build ./cmd/botfleet in %s: %w", h.repo, err)
	}
	f := &fleet{dir: dir, bin: bin, redisBin: redisBin, backlog: h.backlog}
	defer f.close()
	if err := f.start(ctx, 3); err != nil {
		return 0, fmt.Errorf("start the fleet (logs in %s): %w", dir, err)
	}
	fmt.Printf("redis-server, bot and 3 workers up; logs in %s\n", dir)
	rows, err := h.scenarios(ctx, f)
	printTable(os.Stdout, rows)
	code := 0
	for _, r := range rows {
		if r.lost > 0 || r.wrong > 0 {
			code = 1
		}
	}
	if err != nil || code != 0 || h.keep {
		fmt.Printf("logs kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	return code, err
}

func (h *harness) scenarios(ctx context.Context, f *fleet) ([]row, error) {
	c := &client{http: &http.Client{Timeout: 10 * time.Second}, url: f.botURL, budget: 2 * time.Minute}
	k := &checker{c: c, rdb: f.rdb, queue: "default", known: map[string]bool{}}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var rows []row
	for _, sc := range scenarios(h.backlog) {
		if h.only != nil && !slices.Contains(h.only, sc.name) {
			continue
		}
		r, err := h.scenario(ctx, f, c, k, sc, makeJobs(run, sc.name, sc.jobs, rng))
		printRow(os.Stdout, r, h.problems)
		rows = append(rows, r)
		if err != nil {
			return rows, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
	}
	return rows, nil
}

func (h *harness) scenario(ctx context.Context, f *fleet, c *client, k *checker, sc scenario, subs []*submission) (row, error) {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
	start := time.Now()
	if sc.before != nil {
		if err := sc.before(ctx, f, note); err != nil {
			return row{name: sc.name, notes: notes}, err
		}
	}
	faulted := make(chan error, 1)
	go func() { faulted <- sc.fault(ctx, f, note) }()
	c.submitAll(ctx, subs, sc.rate, sc.clients)
	if err := <-faulted; err != nil {
		return row{name: sc.name, notes: notes}, err
	}
	if err := drain(ctx, f, 2*time.Minute); err != nil {
		note("%v", err)
	}
	logs, err := readLogs(f.workers)
	if err != nil {
		return row{name: sc.name, notes: notes}, err
	}
	r, err := k.check(ctx, sc.name, subs, logs)
	if n, err := nonJSON(f.bot.log); err == nil && n > 0 {
		logs.nonJSON[f.bot.log] = n
	}
	for file, n := range logs.nonJSON {
		note("%s: %d lines that are not JSON so far", filepath.Base(file), n)
	}
	note("took %.0fs", time.Since(start).Seconds())
	r.notes = append(notes, r.notes...)
	return r, err
}
