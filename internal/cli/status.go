package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	fs := newFlags(env, "status", "[-o table|json] [-watch] [-interval 2s] [-state S] [-prefix P] [-limit N] [-cursor C] [worker-id]")
	output := fs.String("o", "table", "output: table or json")
	watch := fs.Bool("watch", false, "refresh in place until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval with -watch")
	var q fleet.Query
	fs.StringVar(&q.State, "state", "", "one page: only workers in this state (STARTING, IDLE, BUSY, STOPPING, STOPPED)")
	fs.StringVar(&q.Prefix, "prefix", "", "one page: only workers whose id starts with this")
	fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("one page: at most this many workers (1 to %d, default %d)", fleet.MaxPageSize, fleet.DefaultPageSize))
	fs.StringVar(&q.Cursor, "cursor", "", "one page: the page after this cursor (printed under the previous page)")
	if err := parse(fs, args); err != nil {
		return err
	}
	paged := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "state", "prefix", "limit", "cursor":
			paged = true
		}
	})
	if isSet(fs, "limit") && (q.Limit < 1 || q.Limit > fleet.MaxPageSize) {
		fmt.Fprintf(env.Stderr, "botfleet status: -limit %d: want 1 to %d\n", q.Limit, fleet.MaxPageSize)
		return errUsage
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
	// show reads the fleet, or one page of it, and writes it.
	show := func() (fleet.Summary, error) {
		if !paged {
			f, err := reader.List(ctx)
			if err != nil {
				return fleet.Summary{}, err
			}
			return f.Summary, writeFleet(env.Stdout, f, *output, isTerminalWriter(env.Stdout))
		}
		p, err := reader.Page(ctx, q)
		if err != nil {
			return fleet.Summary{}, err
		}
		if *output == "json" {
			return p.Summary, writeJSONIndent(env.Stdout, p)
		}
		return p.Summary, fleet.WritePage(env.Stdout, p, isTerminalWriter(env.Stdout))
	}
	if !*watch {
		s, err := show()
		var qerr *fleet.QueryError
		if errors.As(err, &qerr) {
			fmt.Fprintf(env.Stderr, "botfleet status: -%s %q: want %s\n", qerr.Field, qerr.Value, qerr.Want)
			return errUsage
		}
		if err != nil {
			return fmt.Errorf("read the fleet: %w", err)
		}
		if s.Alive == 0 {
			return &exitError{code: 1, err: errors.New("")}
		}
		return nil
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		if *output == "table" {
			fmt.Fprint(env.Stdout, "\x1b[H\x1b[2J") // home, clear: refresh in place
		}
		if _, err := show(); err != nil {
			fmt.Fprintf(env.Stdout, "read the fleet: %v (retrying)\n", err)
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
		return writeJSONIndent(w, f)
	}
	return fleet.WriteTable(w, f, color)
}

func writeJSONIndent(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func statusClient(env *Env) (redis.UniversalClient, error) {
	_, r, err := config.LoadRedis(env.Getenv)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return r.NewClient(), nil
}
