package monitoring_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/botfleet/botfleet/monitoring"
)

// A worker's monitoring: state and counters, a resource sampler, metrics,
// dependency checks and the endpoints that serve them.
func ExampleNewServer() {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)

	w := monitoring.NewWorker("worker-1", nil)
	sampler := monitoring.NewSampler(0) // every 5s
	sampler.Start(ctx)
	defer sampler.Stop()

	reg := monitoring.NewRegistry()
	id := monitoring.Identity{WorkerID: "worker-1", Hostname: "bot-server-01", DeploymentEnv: "production"}
	if err := monitoring.RegisterWorkerMetrics(reg, w, sampler, id, nil); err != nil {
		fmt.Println(err)
		return
	}
	mon := monitoring.NewMonitor(monitoring.MonitorOptions{
		Service: "worker", Worker: w, Sampler: sampler, Logger: logger,
		Checks: []monitoring.Check{{
			Name: "redis", Critical: true,
			Run: func(ctx context.Context) error { return nil }, // PING in real life
		}},
	})
	mon.Start(ctx)
	defer mon.Stop()

	srv := monitoring.NewServer(monitoring.ServerOptions{
		Addr: "127.0.0.1:0", Gatherer: reg, Monitor: mon, Logger: logger,
	})
	if err := srv.Open(); err != nil {
		fmt.Println(err) // such as "monitoring: listen on :9200: address already in use"
		return
	}
	defer srv.Close(ctx)

	probe := func(path string) string {
		if err := monitoring.Probe(ctx, srv.URL()+path); err != nil {
			return strings.ReplaceAll(err.Error(), srv.URL(), "") // the port varies
		}
		return "200 OK"
	}
	fmt.Println(probe("/livez"))
	fmt.Println(probe("/readyz"))
	_ = w.SetState(monitoring.StateIdle)
	fmt.Println(probe("/readyz"))
	// Output:
	// 200 OK
	// probe /readyz: 503 Service Unavailable: not ready: state is STARTING
	// 200 OK
}

// The job loop drives the Worker; a listener (the heartbeat) hears every
// state change.
func ExampleWorker() {
	w := monitoring.NewWorker("worker-1", nil)
	w.OnChange(func(old, new monitoring.State) { fmt.Println(old, "->", new) })

	_ = w.SetState(monitoring.StateIdle)
	w.JobStarted("job-42", "scrape")
	w.JobFinished("job-42", "scrape", 1200*time.Millisecond, errors.New("page timed out"))
	_ = w.SetState(monitoring.StateStopping)
	_ = w.SetState(monitoring.StateStopped)
	fmt.Println(w.SetState(monitoring.StateIdle))

	s := w.Snapshot()
	fmt.Println("processed", s.JobsProcessed, "failed", s.JobsFailed)
	// Output:
	// STARTING -> IDLE
	// IDLE -> BUSY
	// BUSY -> IDLE
	// IDLE -> STOPPING
	// STOPPING -> STOPPED
	// monitoring: worker "worker-1": STOPPED -> IDLE: invalid state transition
	// processed 1 failed 1
}

// /health reports degraded when a non-critical dependency fails.
func ExampleMonitor_Health() {
	w := monitoring.NewWorker("worker-1", nil)
	_ = w.SetState(monitoring.StateIdle)
	mon := monitoring.NewMonitor(monitoring.MonitorOptions{
		Service: "worker", Worker: w, Logger: slog.New(slog.DiscardHandler),
		Checks: []monitoring.Check{{
			Name: "heartbeat",
			Run:  func(context.Context) error { return errors.New("last beat 95s ago") },
		}},
	})
	mon.Start(context.Background())
	defer mon.Stop()

	h := mon.Health()
	fmt.Println(h.Status, h.State, h.Checks["heartbeat"].Status, h.Checks["heartbeat"].Error)
	fmt.Println(mon.Ready())
	// Output:
	// degraded IDLE failing last beat 95s ago
	// not ready: check heartbeat failing: last beat 95s ago
}
