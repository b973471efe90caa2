package bot

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/botfleet/botfleet/jobs"
)

// QueueCollector exports the job queue's depth at scrape time:
// jobs_queue_pending (waiting or running), jobs_queue_retrying,
// jobs_dead_letters, jobs_queue_backlog, jobs_queue_backlog_limit,
// jobs_queue_latency_seconds (the age of the oldest job no worker has read)
// and jobs_queue_paused, each by queue. A scrape costs two Redis round
// trips, bounded by a timeout; when Redis does not answer, the
// series are left out and jobs_queue_up reports 0.
type QueueCollector struct {
	queue                       *jobs.Queue
	name                        string
	timeout                     time.Duration
	pending, retrying, dead, up *prometheus.Desc
	backlog, limit              *prometheus.Desc
	latency, paused             *prometheus.Desc
}

// NewQueueCollector returns a collector for queue q named name.
func NewQueueCollector(q *jobs.Queue, name string) *QueueCollector {
	l := []string{"queue"}
	return &QueueCollector{
		queue: q, name: name, timeout: 2 * time.Second,
		pending:  prometheus.NewDesc("jobs_queue_pending", "Jobs in the queue not yet finished: waiting or running.", l, nil),
		retrying: prometheus.NewDesc("jobs_queue_retrying", "Jobs waiting for a retry after a failure.", l, nil),
		dead:     prometheus.NewDesc("jobs_dead_letters", "Jobs in the dead-letter stream.", l, nil),
		up:       prometheus.NewDesc("jobs_queue_up", "1 when the queue's Redis answered the last scrape.", l, nil),
		backlog:  prometheus.NewDesc("jobs_queue_backlog", "Jobs counted against the backlog limit: waiting, running or waiting for a retry.", l, nil),
		limit:    prometheus.NewDesc("jobs_queue_backlog_limit", "The backlog at which submissions are refused with 429 (JOB_MAX_BACKLOG).", l, nil),
		latency:  prometheus.NewDesc("jobs_queue_latency_seconds", "Age of the oldest job no worker has read yet, in seconds; 0 when none waits.", l, nil),
		paused:   prometheus.NewDesc("jobs_queue_paused", "1 while the queue is paused: workers take no new jobs from it.", l, nil),
	}
}

// Describe sends the descriptors.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.retrying
	ch <- c.dead
	ch <- c.up
	ch <- c.backlog
	ch <- c.limit
	ch <- c.latency
	ch <- c.paused
}

// Collect reads the queue's stats.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	qi, err := c.queue.Info(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, c.name)
		return
	}
	st := qi.Stats
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, c.name)
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Length), c.name)
	ch <- prometheus.MustNewConstMetric(c.retrying, prometheus.GaugeValue, float64(st.Retrying), c.name)
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(st.DeadLetters), c.name)
	ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(st.Backlog), c.name)
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(st.MaxBacklog), c.name)
	ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, qi.LatencySeconds, c.name)
	paused := 0.0
	if qi.Paused {
		paused = 1
	}
	ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, c.name)
}
