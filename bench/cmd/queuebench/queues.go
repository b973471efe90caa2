package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/worker"
)

// A queue is one of the systems compared: a producer and consumers of
// jobs of one type.
type queue interface {
	name() string
	// fill enqueues n jobs, payload(i) each, from a few goroutines.
	fill(ctx context.Context, n int, payload func(int) []byte) error
	// enqueue adds one job.
	enqueue(ctx context.Context, payload []byte) error
	// start runs consumers consumers of concurrency each, calling h with
	// every job's payload; stop stops them and waits.
	start(ctx context.Context, consumers, concurrency int, h func([]byte)) (stop func(), err error)
	close()
}

const (
	jobType   = "bench"
	queueName = "bench"
	fillers   = 8
)

// fillWith runs enqueue for i in [0, n) from fillers goroutines.
func fillWith(ctx context.Context, n int, enqueue func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, fillers)
	for g := range fillers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := enqueue(i); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// botfleetQueue is botfleet's queue run by real workers.
type botfleetQueue struct {
	addr string
	once sync.Once
	rdb  *redis.Client
	q    *jobs.Queue
}

func (b *botfleetQueue) name() string { return "botfleet" }

func (b *botfleetQueue) producer() *jobs.Queue {
	b.once.Do(func() {
		b.rdb = redis.NewClient(&redis.Options{Addr: b.addr, PoolSize: 2 * fillers})
		b.q = jobs.NewQueue(b.rdb, queueName, jobs.QueueOptions{})
	})
	return b.q
}

func (b *botfleetQueue) fill(ctx context.Context, n int, payload func(int) []byte) error {
	q := b.producer()
	return fillWith(ctx, n, func(i int) error {
		_, err := q.Enqueue(ctx, jobType, json.RawMessage(payload(i)))
		return err
	})
}

func (b *botfleetQueue) enqueue(ctx context.Context, payload []byte) error {
	_, err := b.producer().Enqueue(ctx, jobType, json.RawMessage(payload))
	return err
}

// start runs each consumer as a worker process would: its own Redis
// client, endpoints on a free port, heartbeat, metrics, JSON logs (to
// io.Discard here).
func (b *botfleetQueue) start(ctx context.Context, consumers, concurrency int, h func([]byte)) (func(), error) {
	logger := slog.New(logging.NewJSONHandler(io.Discard, nil))
	mux := jobs.NewMux()
	mux.HandleFunc(jobType, func(_ context.Context, j *jobs.Job) (any, error) {
		h(j.Payload)
		return nil, nil
	})
	type running struct {
		rdb    *redis.Client
		cancel context.CancelFunc
		done   chan error
	}
	var all []running
	stop := func() {
		for _, r := range all {
			r.cancel()
		}
		for _, r := range all {
			<-r.done
			_ = r.rdb.Close()
		}
	}
	for i := range consumers {
		rdb := redis.NewClient(&redis.Options{Addr: b.addr, ContextTimeoutEnabled: true})
		w, err := worker.New(worker.Options{
			ID: fmt.Sprintf("bench-%d", i), Redis: rdb, Mux: mux, Queue: queueName, Concurrency: concurrency,
			Addr: "127.0.0.1:0", Logger: logger, ShutdownGrace: 10 * time.Second,
			Deployment: &logging.Deployment{Hostname: "bench", Env: "bench"},
		})
		if err != nil {
			_ = rdb.Close()
			stop()
			return nil, err
		}
		wctx, cancel := context.WithCancel(ctx)
		r := running{rdb: rdb, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- w.Run(wctx) }()
		all = append(all, r)
		<-w.Started()
	}
	return stop, nil
}

func (b *botfleetQueue) close() {
	if b.rdb != nil {
		_ = b.rdb.Close()
	}
}

// asynqQueue is asynq with its defaults: a Client, and a Server per
// consumer.
type asynqQueue struct {
	addr   string
	once   sync.Once
	client *asynq.Client
}

func (a *asynqQueue) name() string { return "asynq" }

func (a *asynqQueue) producer() *asynq.Client {
	a.once.Do(func() { a.client = asynq.NewClient(asynq.RedisClientOpt{Addr: a.addr, PoolSize: 2 * fillers}) })
	return a.client
}

func (a *asynqQueue) fill(ctx context.Context, n int, payload func(int) []byte) error {
	c := a.producer()
	return fillWith(ctx, n, func(i int) error {
		_, err := c.EnqueueContext(ctx, asynq.NewTask(jobType, payload(i)), asynq.MaxRetry(0))
		return err
	})
}

func (a *asynqQueue) enqueue(ctx context.Context, payload []byte) error {
	_, err := a.producer().EnqueueContext(ctx, asynq.NewTask(jobType, payload), asynq.MaxRetry(0))
	return err
}

func (a *asynqQueue) start(_ context.Context, consumers, concurrency int, h func([]byte)) (func(), error) {
	var srvs []*asynq.Server
	for range consumers {
		srv := asynq.NewServer(asynq.RedisClientOpt{Addr: a.addr}, asynq.Config{Concurrency: concurrency, LogLevel: asynq.ErrorLevel})
		if err := srv.Start(asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
			h(t.Payload())
			return nil
		})); err != nil {
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	return func() {
		for _, s := range srvs {
			s.Shutdown()
		}
	}, nil
}

func (a *asynqQueue) close() {
	if a.client != nil {
		_ = a.client.Close()
	}
}
