package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

func init() {
	register(command{name: "jobs", summary: "list, show, retry, delete and purge jobs: jobs ls|show|retry|delete|purge (exit 1 when the job is missing or not dead)", run: runJobs})
	register(command{name: "queues", summary: "list queues with depth, latency and rate, pause or resume one: queues ls|pause|resume", run: runQueues})
	register(command{name: "workers", summary: "quiet a worker (finish its jobs, take no more), resume it, or stop it: workers quiet|resume|stop <id>", run: runWorkers})
}

// cliCredential is the credential name the CLI's actions are logged with:
// it acts on Redis directly, with REDIS_URL's access.
const cliCredential = "cli (REDIS_URL)"

// adminCLI is what every admin subcommand shares: its flags' output form
// and the Admin over Redis.
type adminCLI struct {
	env    *Env
	name   string
	output *string
}

func (c *adminCLI) flags(sub, args string) *flag.FlagSet {
	fs := newFlags(c.env, c.name+" "+sub, "[-o table|json] "+args)
	c.output = fs.String("o", "table", "output: table or json")
	return fs
}

// open checks -o and returns an Admin whose records go to stderr.
func (c *adminCLI) open() (*bot.Admin, func(), error) {
	if *c.output != "table" && *c.output != "json" {
		fmt.Fprintf(c.env.Stderr, "botfleet %s: -o %q: want table or json\n", c.name, *c.output)
		return nil, nil, errUsage
	}
	rdb, err := statusClient(c.env)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(logging.NewJSONHandler(c.env.Stderr, nil)).With(logging.KeyService, "cli")
	a, err := bot.NewAdmin(rdb, bot.AdminOptions{Logger: logger, GrafanaURL: c.env.Getenv("GRAFANA_URL")})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return a, func() { rdb.Close() }, nil
}

// write prints v as JSON, or as table does.
func (c *adminCLI) write(v any, table func(w io.Writer)) error {
	if *c.output == "json" {
		return writeJSONIndent(c.env.Stdout, v)
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// failed turns a "no such job/worker" or "not dead" answer into exit 1,
// with the message on stderr.
func failed(err error) error {
	if errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrNotDead) || errors.Is(err, bot.ErrNoWorker) {
		return &exitError{code: 1, err: err}
	}
	if errors.Is(err, jobs.ErrBadListOptions) {
		return &exitError{code: 2, err: err}
	}
	return err
}

func subcommand(env *Env, name string, args []string, subs map[string]func(*adminCLI, []string) error) error {
	if len(args) == 0 || subs[args[0]] == nil {
		var names []string
		for n := range subs {
			names = append(names, n)
		}
		fmt.Fprintf(env.Stderr, "Usage: botfleet %s <%s> [flags]\n", name, strings.Join(sorted(names), "|"))
		return errUsage
	}
	return subs[args[0]](&adminCLI{env: env, name: name}, args[1:])
}

func sorted(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func runJobs(ctx context.Context, env *Env, args []string) error {
	return subcommand(env, "jobs", args, map[string]func(*adminCLI, []string) error{
		"ls":     func(c *adminCLI, a []string) error { return jobsList(ctx, c, a) },
		"show":   func(c *adminCLI, a []string) error { return jobsShow(ctx, c, a) },
		"retry":  func(c *adminCLI, a []string) error { return jobsDead(ctx, c, "retry", a) },
		"delete": func(c *adminCLI, a []string) error { return jobsDead(ctx, c, "delete", a) },
		"purge":  func(c *adminCLI, a []string) error { return jobsDead(ctx, c, "purge", a) },
	})
}

func jobsList(ctx context.Context, c *adminCLI, args []string) error {
	fs := c.flags("ls", "[-queue Q] [-status S] [-type T] [-since 1h] [-limit N] [-cursor C]")
	queue := fs.String("queue", "", "the queue (default: default)")
	var o jobs.ListOptions
	fs.StringVar(&o.Status, "status", "", "queued, running, retrying, succeeded, failed or dead (default: all)")
	fs.StringVar(&o.Type, "type", "", "only jobs of this type")
	since := fs.String("since", "", "only jobs changed since: a duration back from now (1h), RFC 3339 or Unix seconds")
	fs.IntVar(&o.Limit, "limit", 0, "jobs per page, 1 to 1000 (default 100)")
	fs.StringVar(&o.Cursor, "cursor", "", "the page after this cursor (printed under the previous page)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := sinceFlag(c, *since, &o.Since); err != nil {
		return err
	}
	a, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	page, err := a.Jobs(ctx, *queue, o)
	if err != nil {
		return failed(err)
	}
	return c.write(page, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tTYPE\tSTATUS\tATTEMPTS\tWORKER\tUPDATED\tERROR")
		for _, j := range page.Jobs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", j.ID, j.Type, j.Status, j.Attempts, j.MaxAttempts,
				dashIfEmpty(j.Worker), j.UpdatedAt.Format(time.RFC3339), truncateText(j.Error, 60))
		}
		if page.NextCursor != "" {
			fmt.Fprintf(w, "next page: -cursor %s\n", page.NextCursor)
		}
	})
}

func sinceFlag(c *adminCLI, v string, dst *time.Time) error {
	if v == "" {
		return nil
	}
	t, err := bot.ParseSince(v, time.Now())
	if err != nil {
		fmt.Fprintf(c.env.Stderr, "botfleet %s: -%v\n", c.name, err)
		return errUsage
	}
	*dst = t
	return nil
}

func jobsShow(ctx context.Context, c *adminCLI, args []string) error {
	fs := c.flags("show", "<job-id>")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(c.env.Stderr, "botfleet jobs show: one job id\n")
		return errUsage
	}
	a, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	d, err := a.Job(ctx, fs.Arg(0))
	if err != nil {
		return failed(err)
	}
	return c.write(d, func(w io.Writer) {
		fmt.Fprintf(w, "ID\t%s\nType\t%s\nQueue\t%s\nStatus\t%s\nAttempts\t%d/%d\nCreated\t%s\nUpdated\t%s\nPayload\t%s\n",
			d.ID, d.Type, d.Queue, d.Status, d.Attempts, d.MaxAttempts, d.CreatedAt.Format(time.RFC3339),
			d.UpdatedAt.Format(time.RFC3339), truncateText(string(d.Payload), 200))
		if d.Error != "" {
			fmt.Fprintf(w, "Error\t%s\n", d.Error)
		}
		if d.LogsURL != "" {
			fmt.Fprintf(w, "Logs\t%s\n", d.LogsURL)
		}
		for _, at := range d.History {
			fmt.Fprintf(w, "Attempt %d\t%s on %s at %s %s\n", at.Attempt, at.Outcome, dashIfEmpty(at.Worker),
				at.FinishedAt.Format(time.RFC3339), at.Error)
		}
	})
}

// jobsDead retries or deletes one dead job, or retries (-all) or purges
// those a filter selects.
func jobsDead(ctx context.Context, c *adminCLI, action string, args []string) error {
	usage := "<job-id>"
	if action != "delete" {
		usage = "<job-id> | " + map[string]string{"retry": "-all ", "purge": ""}[action] + "[-queue Q] [-type T] [-since 1h]"
	}
	fs := c.flags(action, usage)
	all := fs.Bool("all", false, "retry every dead job the filter selects")
	queue := fs.String("queue", "", "the queue of the filter (default: default)")
	typ := fs.String("type", "", "filter: only dead jobs of this type")
	since := fs.String("since", "", "filter: only jobs dead since (1h, RFC 3339 or Unix seconds)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var f jobs.DeadFilter
	f.Type = *typ
	if err := sinceFlag(c, *since, &f.Since); err != nil {
		return err
	}
	bulk := action == "purge" || *all
	if bulk == (fs.NArg() == 1) || fs.NArg() > 1 {
		fmt.Fprintf(c.env.Stderr, "Usage: botfleet jobs %s %s\n", action, usage)
		return errUsage
	}
	a, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	var ids []string
	switch {
	case action == "retry" && bulk:
		ids, err = a.RetryDead(ctx, cliCredential, *queue, f)
	case action == "purge":
		ids, err = a.PurgeDead(ctx, cliCredential, *queue, f)
	case action == "retry":
		ids, err = []string{fs.Arg(0)}, a.Retry(ctx, cliCredential, fs.Arg(0))
	default:
		ids, err = []string{fs.Arg(0)}, a.Delete(ctx, cliCredential, fs.Arg(0))
	}
	if err != nil {
		return failed(err)
	}
	if ids == nil {
		ids = []string{}
	}
	return c.write(map[string]any{"action": action, "ids": ids, "count": len(ids)}, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %d job(s)\n", action, len(ids))
		for _, id := range ids {
			fmt.Fprintln(w, id)
		}
	})
}

func runQueues(ctx context.Context, env *Env, args []string) error {
	return subcommand(env, "queues", args, map[string]func(*adminCLI, []string) error{
		"ls":     func(c *adminCLI, a []string) error { return queuesList(ctx, c, a) },
		"pause":  func(c *adminCLI, a []string) error { return queueAction(ctx, c, "pause", a) },
		"resume": func(c *adminCLI, a []string) error { return queueAction(ctx, c, "resume", a) },
	})
}

func queuesList(ctx context.Context, c *adminCLI, args []string) error {
	if err := parse(c.flags("ls", ""), args); err != nil {
		return err
	}
	a, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	qs, err := a.Queues(ctx)
	if err != nil {
		return err
	}
	return c.write(map[string]any{"queues": qs}, func(w io.Writer) {
		fmt.Fprintln(w, "QUEUE\tSTATE\tWAITING\tIN FLIGHT\tRETRYING\tDEAD\tLATENCY\tRATE/S")
		for _, q := range qs {
			state := "running"
			if q.Paused {
				state = "paused"
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%.1fs\t%.2f\n", q.Name, state, q.Waiting, q.InFlight, q.Retrying,
				q.DeadLetters, q.LatencySeconds, q.RatePerSecond)
		}
	})
}

func queueAction(ctx context.Context, c *adminCLI, action string, args []string) error {
	fs := c.flags(action, "<queue>")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(c.env.Stderr, "Usage: botfleet queues %s <queue>\n", action)
		return errUsage
	}
	a, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	if action == "pause" {
		err = a.Pause(ctx, cliCredential, fs.Arg(0))
	} else {
		err = a.Resume(ctx, cliCredential, fs.Arg(0))
	}
	if err != nil {
		return err
	}
	return c.write(map[string]string{"queue": fs.Arg(0), "action": action}, func(w io.Writer) {
		fmt.Fprintf(w, "queue %s: %s\n", fs.Arg(0), map[string]string{"pause": "paused (workers take no new jobs within a second)", "resume": "resumed"}[action])
	})
}

func runWorkers(ctx context.Context, env *Env, args []string) error {
	act := func(what string) func(*adminCLI, []string) error {
		return func(c *adminCLI, a []string) error { return workerAction(ctx, c, what, a) }
	}
	return subcommand(env, "workers", args, map[string]func(*adminCLI, []string) error{
		"quiet": act(heartbeat.ControlQuiet), "resume": act(heartbeat.ControlResume), "stop": act(heartbeat.ControlStop),
	})
}

func workerAction(ctx context.Context, c *adminCLI, what string, args []string) error {
	fs := c.flags(what, "<worker-id>")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(c.env.Stderr, "Usage: botfleet workers %s <worker-id>\n", what)
		return errUsage
	}
	a, done, err := c.open()
	if err != nil {
		return err
	}
	defer done()
	if err := a.ControlWorker(ctx, cliCredential, fs.Arg(0), what); err != nil {
		return failed(err)
	}
	return c.write(map[string]string{"worker_id": fs.Arg(0), "action": what}, func(w io.Writer) {
		fmt.Fprintf(w, "worker %s: %s requested (honoured within a second; its heartbeat shows it)\n", fs.Arg(0), what)
	})
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
