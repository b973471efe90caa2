package bot

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/jobs"
)

// TestQueueCollectorLatencyAndPaused reads a paused queue with a job
// waiting: jobs_queue_paused is 1 and jobs_queue_latency_seconds the
// waiting job's age; resumed, paused is 0.
func TestQueueCollectorLatencyAndPaused(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := jobs.NewQueue(rdb, "", jobs.QueueOptions{})
	if _, err := q.Enqueue(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewQueueCollector(q, q.Name()))
	got := gauges(t, reg)
	if got["jobs_queue_paused"] != 1 || got["jobs_queue_pending"] != 1 {
		t.Errorf("gauges = %v, want paused 1, pending 1", got)
	}
	// The job's age is counted from its stream id, in Redis's clock: wait
	// until it is older than a millisecond rather than assume so.
	for got["jobs_queue_latency_seconds"] <= 0 {
		got = gauges(t, reg)
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gauges(t, reg); got["jobs_queue_paused"] != 0 {
		t.Errorf("jobs_queue_paused after resume = %v, want 0", got["jobs_queue_paused"])
	}
}

func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if f.GetType() == dto.MetricType_GAUGE {
				out[f.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
