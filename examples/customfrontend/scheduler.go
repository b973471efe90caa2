package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/logging"
)

// Entry is one scheduled job.
type Entry struct {
	Every   time.Duration
	Type    string
	Payload json.RawMessage
}

// Scheduler is a bot.Frontend that submits Entry's job every Entry.Every.
// It is safe for concurrent use.
type Scheduler struct {
	deps  bot.Deps
	entry Entry

	mu      sync.Mutex
	lastID  string
	lastErr string
	runs    int
}

// NewScheduler returns the scheduler frontend; deps come from
// (*bot.Bot).Deps("scheduler").
func NewScheduler(deps bot.Deps, e Entry) *Scheduler { return &Scheduler{deps: deps, entry: e} }

// Name is the frontend's service name in logs and metrics.
func (*Scheduler) Name() string { return "scheduler" }

// Mount serves the schedule at GET /api/schedule, behind the bot's token
// when one is set.
func (s *Scheduler) Mount(handle func(pattern string, h http.Handler, protected bool)) {
	handle("GET /api/schedule", http.HandlerFunc(s.serveSchedule), true)
}

// Run submits the job every interval until ctx ends. A job the queue
// refuses (Redis down, a bad payload) is logged and tried at the next
// tick; the scheduler never stops the bot.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.entry.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.submit(ctx)
		}
	}
}

func (s *Scheduler) submit(ctx context.Context) {
	if err := s.deps.Types.Validate(s.entry.Type, s.entry.Payload); err != nil {
		s.record("", err)
		s.deps.Logger.ErrorContext(ctx, "scheduled job refused", "type", s.entry.Type, "error", err)
		return
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second) // never wait on Redis without a deadline
	defer cancel()
	info, err := s.deps.Queue.Enqueue(qctx, s.entry.Type, s.entry.Payload)
	s.record(info.ID, err)
	if err != nil {
		s.deps.Logger.WarnContext(ctx, "scheduled job not queued; next tick tries again", "type", s.entry.Type, "error", err)
		return
	}
	s.deps.Metrics.Submitted(s.entry.Type, s.Name())
	s.deps.Logger.InfoContext(logging.With(ctx, logging.KeyJobID, info.ID), "scheduled job submitted", "type", s.entry.Type)
}

func (s *Scheduler) record(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	s.lastID, s.lastErr = id, ""
	if err != nil {
		s.lastErr = err.Error()
	}
}

func (s *Scheduler) serveSchedule(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	body := map[string]any{"type": s.entry.Type, "every_seconds": s.entry.Every.Seconds(), "runs": s.runs,
		"last_job_id": s.lastID, "last_error": s.lastErr}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
