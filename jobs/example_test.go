package jobs_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/jobs"
)

func ExampleQueue_Enqueue() {
	mr, err := miniredis.Run() // or any Redis: redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	q := jobs.NewQueue(rdb, "default", jobs.QueueOptions{})
	info, err := q.Enqueue(context.Background(), "http.fetch", jobs.FetchPayload{URL: "https://example.com"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Type, info.Status, info.MaxAttempts)
	// Output: http.fetch queued 3
}

func ExampleConsumer_Run() {
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	logger := slog.New(slog.DiscardHandler) // a worker passes logging.Setup's logger
	mux := jobs.NewMux()
	jobs.Builtins(mux, nil)
	mux.HandleFunc("greet", func(ctx context.Context, job *jobs.Job) (any, error) {
		var p struct{ Name string }
		if err := job.Decode(&p); err != nil {
			return nil, err // a payload that does not decode is not retried
		}
		logger.InfoContext(ctx, "greeting", "name", p.Name) // ctx carries job_id
		return "hello, " + p.Name, nil
	})
	consumer := jobs.NewConsumer(rdb, "default", "worker-1", mux, jobs.ConsumerOptions{
		Concurrency: 2,
		Logger:      logger,
	})
	ctx, stop := context.WithCancel(context.Background()) // a worker uses signal.NotifyContext
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx) }()

	q := jobs.NewQueue(rdb, "default", jobs.QueueOptions{})
	info, _ := q.Enqueue(context.Background(), "greet", map[string]string{"name": "Ada"})
	for info.Status != jobs.StatusSucceeded {
		time.Sleep(10 * time.Millisecond)
		info, _ = q.Get(context.Background(), info.ID)
	}
	fmt.Println(info.Status, string(info.Result))

	stop() // as on SIGTERM: stop taking jobs,
	<-done
	grace, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := consumer.Shutdown(grace); err != nil { // then let running jobs finish
		log.Print(err)
	}
	// Output: succeeded "hello, Ada"
}
