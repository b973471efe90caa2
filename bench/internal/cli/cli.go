// Package cli is what the benchmark programs' main functions share: flags
// parsed from the command line, and a context that SIGINT and SIGTERM
// cancel.
package cli

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
)

// Start returns a context that SIGINT and SIGTERM cancel, then parses
// os.Args[1:] with parse; if parse fails, the program exits with status 2
// (the flag package has already said why).
func Start(parse func([]string) error) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if err := parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	return ctx, stop
}

// Run is Start, then run; an error from run is fatal (log.Fatal, exit
// status 1).
func Run(parse func([]string) error, run func(context.Context) error) {
	ctx, stop := Start(parse)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}
