package bot_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/botfleet/botfleet/bot"
)

// pinger is a frontend of one HTTP route that queues an echo job.
type pinger struct{ deps bot.Deps }

func (pinger) Name() string { return "pinger" }

func (p pinger) Mount(handle func(string, http.Handler, bool)) {
	handle("POST /ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := p.deps.Queue.Enqueue(r.Context(), "echo", map[string]string{"message": "pong"})
		if err != nil {
			http.Error(w, "not queued: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		p.deps.Metrics.Submitted("echo", p.Name())
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(info.ID))
	}), true)
}

func (pinger) Run(context.Context) error { return nil }

// A bot with the web job API, the fleet view and a frontend of your own,
// configured by the environment.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := bot.FromEnv(nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := bot.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Add(pinger{deps: b.Deps("pinger")}); err != nil {
		log.Fatal(err)
	}
	if err := b.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
