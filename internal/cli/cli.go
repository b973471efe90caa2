// Package cli implements the botfleet command's subcommands. main only
// wires signals to a context and calls Run, so end-to-end tests drive the
// same code in-process or through the built binary.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/botfleet/botfleet/internal/process"
	"io"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// Env is what a subcommand talks to: its output streams and environment,
// injectable for tests.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// errUsage marks an error already explained on stderr; Run exits 2.
var errUsage = errors.New("usage")

// exitError carries a specific exit code (status uses 1 for "no worker alive").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// Run runs the subcommand named by args[0] and returns the exit code: 0 on
// success, 2 for a usage error, 1 for anything else.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunEnv(ctx, args, &Env{Stdout: stdout, Stderr: stderr})
}

// RunEnv is Run with an explicit environment (nil Getenv means the process's).
func RunEnv(ctx context.Context, args []string, env *Env) int {
	if env.Getenv == nil {
		env.Getenv = osGetenv
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "botfleet: unknown command %q\n\n", args[0])
		usage(env.Stderr)
		return 2
	}
	routeRedisLogs(nil)
	err := c.run(ctx, env, args[1:])
	var ee *exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, process.ErrRedisRefused):
		fmt.Fprintf(env.Stderr, "botfleet %s: %v\n", c.name, err)
		return 2
	case errors.As(err, &ee):
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(env.Stderr, "botfleet %s: %v\n", c.name, ee.err)
		}
		return ee.code
	default:
		fmt.Fprintf(env.Stderr, "botfleet %s: %v\n", c.name, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "botfleet: logging and monitoring for a distributed bot fleet")
	fmt.Fprintln(w, "\nUsage: botfleet <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun \"botfleet <command> -h\" for a command's flags; configuration is by environment (see README.md).")
}

// newFlags returns a flag set that prints its usage to env.Stderr.
func newFlags(env *Env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: botfleet %s %s\n", name, strings.TrimSpace(args))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning flag errors (already printed) into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
