package monitoring

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// HeartbeatStats is what the metrics need from the heartbeat writer.
type HeartbeatStats interface {
	// Failures counts the beats that did not reach Redis.
	Failures() uint64
	// LastSuccess is when a beat last reached Redis; zero if none has.
	LastSuccess() time.Time
}

// jobDurationBuckets spans jobs from 5ms to 5 minutes, in seconds.
func jobDurationBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
}

// NewRegistry returns a registry holding the standard process_* and go_*
// collectors, to which RegisterWorkerMetrics adds the worker's.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	)
	return reg
}

// RegisterWorkerMetrics registers with reg the worker_* metrics of w, read
// at scrape time from w, s and hb (cached figures only, so a scrape is
// cheap), all labelled with id. s may be nil: the resource metrics are then
// left out; hb may be nil: the heartbeat metrics then report 0. From now on
// w's JobFinished observes worker_job_duration_seconds in reg, replacing an
// earlier registration's histogram.
func RegisterWorkerMetrics(reg prometheus.Registerer, w *Worker, s *Sampler, id Identity, hb HeartbeatStats) error {
	if w == nil {
		return errors.New("monitoring: RegisterWorkerMetrics: nil Worker")
	}
	c := newWorkerCollector(w, s, hb, id)
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "worker_job_duration_seconds",
		Help:        "Time taken by the worker's finished jobs, by job type.",
		Buckets:     jobDurationBuckets(),
		ConstLabels: prometheus.Labels(id.Labels()),
	}, []string{"type"})
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("monitoring: register worker metrics: %w", err)
	}
	if err := reg.Register(durations); err != nil {
		reg.Unregister(c)
		return fmt.Errorf("monitoring: register worker_job_duration_seconds: %w", err)
	}
	// The type label is bounded: only the types of the worker's Mux reach
	// a handler (an unknown type is dead-lettered without running).
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "worker_job_attempts_total",
		Help:        "Job attempts the worker finished, by job type and outcome (succeeded or failed).",
		ConstLabels: prometheus.Labels(id.Labels()),
	}, []string{"type", "outcome"})
	if err := reg.Register(attempts); err != nil {
		reg.Unregister(c)
		reg.Unregister(durations)
		return fmt.Errorf("monitoring: register worker_job_attempts_total: %w", err)
	}
	w.setObserver(func(jobType string, took time.Duration, err error) {
		durations.WithLabelValues(jobType).Observe(took.Seconds())
		outcome := "succeeded"
		if err != nil {
			outcome = "failed"
		}
		attempts.WithLabelValues(jobType, outcome).Inc()
	})
	return nil
}

// workerCollector reads the worker's figures at scrape time.
type workerCollector struct {
	w  *Worker
	s  *Sampler
	hb HeartbeatStats

	state, uptime, processed, failed, dead, hbFailures, hbLast, info *prometheus.Desc
	memory, cpu, threads, fds                                        *prometheus.Desc // nil without a Sampler
}

func newWorkerCollector(w *Worker, s *Sampler, hb HeartbeatStats, id Identity) *workerCollector {
	labels := prometheus.Labels(id.Labels())
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, nil, labels)
	}
	infoLabels := prometheus.Labels(id.Labels())
	infoLabels["version"] = id.Version
	infoLabels["go_version"] = runtime.Version()
	c := &workerCollector{
		w: w, s: s, hb: hb,
		state:      desc("worker_state", "Current state of the worker: 0 STARTING, 1 IDLE, 2 BUSY, 3 STOPPING, 4 STOPPED."),
		uptime:     desc("worker_uptime_seconds", "Seconds since the worker started."),
		processed:  desc("worker_jobs_processed_total", "Job attempts the worker finished, failed or not (a job retried three times counts three)."),
		failed:     desc("worker_jobs_failed_total", "Job attempts the worker finished with an error, retried or not; worker_jobs_dead_lettered_total counts the jobs that failed for good."),
		dead:       desc("worker_jobs_dead_lettered_total", "Jobs whose last attempt failed on this worker and that went to the dead-letter stream: jobs that failed for good."),
		hbFailures: desc("worker_heartbeat_failures_total", "Heartbeats that failed to reach Redis."),
		hbLast:     desc("worker_last_heartbeat_timestamp_seconds", "Unix time of the last heartbeat that reached Redis; 0 if none has."),
		info:       prometheus.NewDesc("worker_info", "Worker identity and build; always 1.", nil, infoLabels),
	}
	if s != nil {
		c.memory = desc("worker_memory_bytes", "Resident memory (RSS) of the worker process in bytes.")
		c.cpu = desc("worker_cpu_percent", "CPU used by the worker process over the last sample interval, in percent of one core (100 = one full core).")
		c.threads = desc("worker_threads", "OS threads of the worker process.")
		c.fds = desc("worker_open_fds", "Open file descriptors of the worker process.")
	}
	return c
}

func (c *workerCollector) descs() []*prometheus.Desc {
	d := []*prometheus.Desc{c.state, c.uptime, c.processed, c.failed, c.dead, c.hbFailures, c.hbLast, c.info}
	if c.s != nil {
		d = append(d, c.memory, c.cpu, c.threads, c.fds)
	}
	return d
}

// Describe implements prometheus.Collector.
func (c *workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *workerCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	state, processed, failed, dead := c.w.counters()
	gauge(c.state, float64(state))
	gauge(c.uptime, c.w.uptime().Seconds())
	counter(c.processed, float64(processed))
	counter(c.failed, float64(failed))
	counter(c.dead, float64(dead))
	var hbFailures, hbLast float64
	if c.hb != nil {
		hbFailures = float64(c.hb.Failures())
		if t := c.hb.LastSuccess(); !t.IsZero() {
			hbLast = float64(t.UnixNano()) / 1e9
		}
	}
	counter(c.hbFailures, hbFailures)
	gauge(c.hbLast, hbLast)
	gauge(c.info, 1)
	if c.s != nil {
		var cur sample
		if p := c.s.load(); p != nil {
			cur = *p
		}
		gauge(c.memory, float64(cur.rss))
		gauge(c.cpu, cur.cpuPercent)
		gauge(c.threads, float64(cur.res.NumThreads))
		gauge(c.fds, float64(cur.res.OpenFiles))
	}
}
