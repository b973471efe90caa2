// Command botfleet runs and observes a distributed bot fleet: the bot
// service, its workers, the whole fleet on one machine (up), and views of
// it (status). Run "botfleet --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/botfleet/botfleet/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
