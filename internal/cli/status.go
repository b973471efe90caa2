package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
	"github.com/botfleet/botfleet/internal/config"
)

func init() {
	register(command{name: "status", summary: "show the fleet from the heartbeats in Redis (exit 1 when no worker is alive)", run: runStatus})
	register(command{name: "inspect", summary: "show one worker's whole heartbeat and recent history (same as status <worker-id>)", run: runInspect})
}

func runStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "status", "[-o table|json] [-watch] [-interval 2s] [worker-id]")
	output := fs.String("o", "table", "output: table or json")
	watch := fs.Bool("watch", false, "refresh in place until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval with -watch")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(env.Stderr, "botfleet status: -o %q: want table or json\n", *output)
		return errUsage
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintf(env.Stderr, "botfleet status: -interval %v: want at least 100ms\n", *interval)
		return errUsage
	}
	rdb, err := statusClient(env)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reader := fleet.NewReader(rdb, fleet.Options{})
	if fs.NArg() > 1 {
		fmt.Fprintln(env.Stderr, "botfleet status: at most one worker id")
		return errUsage
	}
	if fs.NArg() == 1 {
		return inspect(ctx, env, reader, fs.Arg(0), *output)
	}
	if !*watch {
		f, err := reader.List(ctx)
		if err != nil {
			return fmt.Errorf("read the fleet: %w", err)
		}
		if err := writeFleet(env.Stdout, f, *output, isTerminalWriter(env.Stdout)); err != nil {
			return err
		}
		if f.Summary.Alive == 0 {
			return &exitError{code: 1, err: errors.New("")}
		}
		return nil
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		f, err := reader.List(ctx)
		if *output == "table" {
			fmt.Fprint(env.Stdout, "\x1b[H\x1b[2J") // home, clear: refresh in place
		}
		if err != nil {
			fmt.Fprintf(env.Stdout, "read the fleet: %v (retrying)\n", err)
		} else if err := writeFleet(env.Stdout, f, *output, isTerminalWriter(env.Stdout)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func runInspect(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "inspect", "[-o table|json] <worker-id>")
	output := fs.String("o", "table", "output: table or json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "botfleet inspect: want exactly one worker id")
		return errUsage
	}
	rdb, err := statusClient(env)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return inspect(ctx, env, fleet.NewReader(rdb, fleet.Options{}), fs.Arg(0), *output)
}

func inspect(ctx context.Context, env *Env, reader *fleet.Reader, id, output string) error {
	w, err := reader.Get(ctx, id)
	if errors.Is(err, fleet.ErrNotFound) {
		return &exitError{code: 1, err: fmt.Errorf("no worker %q in the fleet (never registered, stopped, or its heartbeat expired)", id)}
	}
	if err != nil {
		return fmt.Errorf("read worker %q: %w", id, err)
	}
	history, err := reader.History(ctx, id, 20)
	if err != nil {
		return fmt.Errorf("read the history of %q: %w", id, err)
	}
	if output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			fleet.Worker
			History []fleet.Point `json:"history"`
		}{w, history})
	}
	return fleet.WriteInspect(env.Stdout, w, history)
}

func writeFleet(w io.Writer, f fleet.Fleet, output string, color bool) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	}
	return fleet.WriteTable(w, f, color)
}

func statusClient(env *Env) (*redis.Client, error) {
	_, opts, err := config.LoadRedis(env.Getenv)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}
