package heartbeat_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
)

// A worker beats every interval and at once on a state change, and
// deregisters when it stops.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	started := time.Now()
	state := heartbeat.StateIdle // in a real worker, its state machine
	b, err := heartbeat.New(rdb, heartbeat.Options{
		Interval: 30 * time.Second, // HEARTBEAT_INTERVAL
		Report: func() heartbeat.Status {
			return heartbeat.Status{
				Identity:   heartbeat.Identity{WorkerID: "worker-1", Service: "worker"},
				State:      state.String(),
				StartedAt:  started,
				MetricsURL: "http://10.0.3.17:9200/metrics",
			}
		},
	})
	if err != nil {
		log.Fatal(err) // a bad option, named in the error
	}
	ctx := context.Background()
	if err := b.Start(ctx); err != nil { // Redis being down is not an error
		log.Fatal(err)
	}

	// ... on a state change (guarded by the worker's own lock):
	b.Trigger()

	// On SIGTERM: a STOPPED entry in the stream, the hash and index entry gone.
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.Stop(stopCtx); err != nil {
		log.Printf("heartbeat: %v", err) // the hash will expire by its TTL
	}
}

// A worker runs until SIGTERM: cancelling Start's context ends the beats,
// and Stop, with a context of its own, deregisters the worker.
func ExampleBeater_Stop() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	b, err := heartbeat.New(rdb, heartbeat.Options{
		Report: func() heartbeat.Status {
			return heartbeat.Status{Identity: heartbeat.Identity{WorkerID: "worker-1"}, State: "IDLE"}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := b.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-ctx.Done() // the worker's job loop runs meanwhile

	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Stop(stopCtx); err != nil {
		log.Printf("heartbeat: %v", err)
	}
}

// A reader decodes a worker's hash, as HGETALL returns it, and decides
// whether the worker is alive.
func ExampleDecode() {
	fields := map[string]string{ // HGETALL worker:heartbeat:worker-1
		"worker_id":   "worker-1",
		"state":       "BUSY",
		"timestamp":   "1688851200.123",
		"interval":    "30",
		"current_job": "browser.navigate.abc123",
		"resources":   `{"memory_mb":245.7,"memory_percent":2.4,"cpu_percent":15.3,"num_threads":12}`,
		"gpu":         "A100", // unknown to this reader: ignored
	}
	s, err := heartbeat.Decode(fields)
	if err != nil {
		log.Fatal(err)
	}
	now := time.Unix(1688851240, 0)
	alive := now.Sub(s.Timestamp) <= s.Interval*3/2
	fmt.Println(s.WorkerID, s.State, s.CurrentJob, s.Resources.MemoryMB, "alive:", alive)

	fields["state"] = "SLEEPING"
	_, err = heartbeat.Decode(fields)
	fmt.Println(err)
	// Output:
	// worker-1 BUSY browser.navigate.abc123 245.7 alive: true
	// heartbeat: field "state": "SLEEPING" is not a known state: want one of STARTING, IDLE, BUSY, STOPPING, STOPPED
}
