package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/heartbeat"
	"github.com/botfleet/botfleet/jobs"
	"github.com/botfleet/botfleet/logging"
)

// Admin is the operator's actions on jobs, queues and workers: the one
// implementation behind the admin API (AdminHandler), the CLI (botfleet
// jobs, queues, workers) and the dashboard's buttons. Every action is
// logged at INFO with what it did, the ids, and the name of the credential
// that asked (never its value), and counted in
// bot_admin_actions_total{action}. It is safe for concurrent use.
type Admin struct {
	rdb        redis.UniversalClient
	logger     *slog.Logger
	grafanaURL string
	actions    *prometheus.CounterVec
}

// AdminOptions configure an Admin. The zero value is valid.
type AdminOptions struct {
	// Logger receives the actions' records; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives bot_admin_actions_total; nil counts nowhere.
	Registry prometheus.Registerer
	// GrafanaURL (GRAFANA_URL) makes a job's detail link to its log lines
	// in Grafana Explore; empty leaves the link out.
	GrafanaURL string
}

// The actions, as bot_admin_actions_total's action label has them.
var adminActions = []string{"retry", "retry_dead", "delete", "purge_dead", "pause", "resume", "quiet", "unquiet", "stop"}

// NewAdmin returns an Admin over rdb. An error means the counter could not
// be registered.
func NewAdmin(rdb redis.UniversalClient, o AdminOptions) (*Admin, error) {
	a := &Admin{rdb: rdb, logger: cmp.Or(o.Logger, slog.Default()), grafanaURL: o.GrafanaURL,
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bot_admin_actions_total",
			Help: "Operator actions done (through the admin API, the CLI or the dashboard), by action.",
		}, []string{"action"})}
	for _, act := range adminActions {
		a.actions.WithLabelValues(act)
	}
	if o.Registry != nil {
		if err := o.Registry.Register(a.actions); err != nil {
			return nil, fmt.Errorf("bot: register bot_admin_actions_total: %w", err)
		}
	}
	return a, nil
}

// done logs and counts an action.
func (a *Admin) done(ctx context.Context, action, credential string, ids []string, attrs ...any) {
	a.actions.WithLabelValues(action).Inc()
	args := append([]any{"action", action, "ids", ids, "credential", credential}, attrs...)
	a.logger.InfoContext(ctx, "admin action", args...)
}

func (a *Admin) queue(name string) *jobs.Queue {
	return jobs.NewQueue(a.rdb, name, jobs.QueueOptions{})
}

// Queues returns every known queue's overview (jobs.Queue.Info), the
// default queue always among them.
func (a *Admin) Queues(ctx context.Context) ([]jobs.QueueInfo, error) {
	names, err := jobs.Queues(ctx, a.rdb)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(names, jobs.DefaultQueue) {
		names = append([]string{jobs.DefaultQueue}, names...)
	}
	out := make([]jobs.QueueInfo, 0, len(names))
	for _, n := range names {
		qi, err := a.queue(n).Info(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, qi)
	}
	return out, nil
}

// Jobs lists a queue's jobs (jobs.Queue.List).
func (a *Admin) Jobs(ctx context.Context, queue string, o jobs.ListOptions) (jobs.Page, error) {
	return a.queue(queue).List(ctx, o)
}

// JobDetail is a job whole as operators see it: its payload redacted and,
// with a Grafana URL, a link to its log lines.
type JobDetail struct {
	jobs.Detail
	LogsURL string `json:"logs_url,omitempty"`
}

// Job returns the job whole, its payload redacted by the logging rules.
func (a *Admin) Job(ctx context.Context, id string) (JobDetail, error) {
	d, err := a.queue("").Show(ctx, id)
	if err != nil {
		return JobDetail{}, err
	}
	d.Payload = redactJSON(d.Payload)
	for i := range d.History {
		d.History[i].Error = logging.RedactString(d.History[i].Error)
	}
	d.Error = logging.RedactString(d.Error)
	return JobDetail{Detail: d, LogsURL: LogsURL(a.grafanaURL, id)}, nil
}

// redactJSON masks secrets in a payload; a payload that no longer parses
// after masking is returned as a JSON string of its masked text.
func redactJSON(p json.RawMessage) json.RawMessage {
	if p == nil {
		return nil
	}
	s := logging.RedactString(string(p))
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// LogsURL is a Grafana Explore URL of the job's log lines in Loki
// ({service=~".+"} | job_id="<id>"), or "" without a Grafana URL.
func LogsURL(grafanaURL, jobID string) string {
	if grafanaURL == "" {
		return ""
	}
	left := map[string]any{
		"datasource": "loki",
		"queries":    []map[string]string{{"refId": "A", "expr": fmt.Sprintf(`{service=~".+"} | job_id=%q`, jobID)}},
		"range":      map[string]string{"from": "now-24h", "to": "now"},
	}
	b, _ := json.Marshal(left)
	return trimSlash(grafanaURL) + "/explore?orgId=1&left=" + url.QueryEscape(string(b))
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// jobQueue is the queue a job's hash names.
func (a *Admin) jobQueue(ctx context.Context, id string) (*jobs.Queue, error) {
	info, err := a.queue("").Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.queue(info.Queue), nil
}

// Retry queues a dead job again (jobs.Queue.Retry).
func (a *Admin) Retry(ctx context.Context, credential, id string) error {
	q, err := a.jobQueue(ctx, id)
	if err == nil {
		err = q.Retry(ctx, id)
	}
	if err != nil {
		return err
	}
	a.done(ctx, "retry", credential, []string{id}, "queue", q.Name())
	return nil
}

// Delete deletes a dead job (jobs.Queue.Delete).
func (a *Admin) Delete(ctx context.Context, credential, id string) error {
	q, err := a.jobQueue(ctx, id)
	if err == nil {
		err = q.Delete(ctx, id)
	}
	if err != nil {
		return err
	}
	a.done(ctx, "delete", credential, []string{id}, "queue", q.Name())
	return nil
}

// RetryDead retries a queue's dead jobs that f selects and returns their
// ids.
func (a *Admin) RetryDead(ctx context.Context, credential, queue string, f jobs.DeadFilter) ([]string, error) {
	ids, err := a.queue(queue).RetryDead(ctx, f)
	if len(ids) > 0 || err == nil {
		a.done(ctx, "retry_dead", credential, ids, "queue", queueOrDefault(queue), "type", f.Type, "since", sinceText(f.Since))
	}
	return ids, err
}

// PurgeDead deletes a queue's dead jobs that f selects and returns their
// ids.
func (a *Admin) PurgeDead(ctx context.Context, credential, queue string, f jobs.DeadFilter) ([]string, error) {
	ids, err := a.queue(queue).PurgeDead(ctx, f)
	if len(ids) > 0 || err == nil {
		a.done(ctx, "purge_dead", credential, ids, "queue", queueOrDefault(queue), "type", f.Type, "since", sinceText(f.Since))
	}
	return ids, err
}

// Pause pauses a queue; Resume resumes it.
func (a *Admin) Pause(ctx context.Context, credential, queue string) error {
	if err := a.queue(queue).Pause(ctx); err != nil {
		return err
	}
	a.done(ctx, "pause", credential, []string{queueOrDefault(queue)})
	return nil
}

// Resume lets a paused queue's workers take jobs again.
func (a *Admin) Resume(ctx context.Context, credential, queue string) error {
	if err := a.queue(queue).Resume(ctx); err != nil {
		return err
	}
	a.done(ctx, "resume", credential, []string{queueOrDefault(queue)})
	return nil
}

// ErrNoWorker is returned (wrapped) when a worker to control has no
// heartbeat.
var ErrNoWorker = errors.New("bot: no such worker")

// ControlWorker asks a worker to quiet down (heartbeat.ControlQuiet),
// take jobs again (heartbeat.ControlResume) or stop (heartbeat.ControlStop).
func (a *Admin) ControlWorker(ctx context.Context, credential, workerID, what string) error {
	if what != heartbeat.ControlResume {
		n, err := a.rdb.Exists(ctx, heartbeat.KeyPrefix+workerID).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w %q: no heartbeat", ErrNoWorker, workerID)
		}
	}
	if err := heartbeat.SendControl(ctx, a.rdb, workerID, what); err != nil {
		return err
	}
	action := what
	if what == heartbeat.ControlResume {
		action = "unquiet"
	}
	a.done(ctx, action, credential, []string{workerID})
	return nil
}

func queueOrDefault(q string) string { return cmp.Or(q, jobs.DefaultQueue) }

func sinceText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
