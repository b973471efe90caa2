package fleet

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collectTimeout bounds the List behind one scrape, well under Prometheus's
// default scrape timeout of 10s.
const collectTimeout = 5 * time.Second

// ageQuantiles are the quantiles of fleet_heartbeat_age_seconds; 1 is the
// oldest beat.
var ageQuantiles = []float64{0.5, 0.9, 0.99, 1}

// collector computes the fleet_* metrics from one List per scrape.
type collector struct {
	r                                  *Reader
	workers, alive, stale, invalid, up *prometheus.Desc
	age, skipped, quiet                *prometheus.Desc
}

// NewCollector returns a Collector of the fleet's metrics, read from r at
// each scrape (one List, bounded by a timeout):
//
//	fleet_up                      1 when Redis answered, else 0 and nothing else
//	fleet_workers{state}          alive workers by state, every state present
//	fleet_workers_alive           workers whose last beat is within 1.5 intervals
//	fleet_workers_stale           workers late beyond that, hash not yet expired
//	fleet_workers_invalid         workers whose heartbeat hash is malformed
//	fleet_heartbeat_age_seconds   summary of the beat ages across (alive and stale) workers
//	fleet_targets_skipped         alive workers left out of /api/fleet/targets (no usable metrics_url)
//	fleet_workers_quiet           alive workers that were quieted: finishing their jobs, taking no new ones
//
// The names are those of deploy/prometheus/rules/botfleet.yml and the
// Grafana dashboard. Register it with the bot's registry.
func NewCollector(r *Reader) prometheus.Collector {
	return &collector{
		r:       r,
		up:      prometheus.NewDesc("fleet_up", "1 when the fleet could be read from Redis at this scrape, else 0.", nil, nil),
		workers: prometheus.NewDesc("fleet_workers", "Alive workers by state (every state is present, 0 when none).", []string{"state"}, nil),
		alive:   prometheus.NewDesc("fleet_workers_alive", "Workers whose last heartbeat is at most 1.5 of their intervals old.", nil, nil),
		stale:   prometheus.NewDesc("fleet_workers_stale", "Workers whose heartbeat is late beyond 1.5 intervals and whose hash has not expired yet.", nil, nil),
		invalid: prometheus.NewDesc("fleet_workers_invalid", "Registered workers whose heartbeat hash does not follow the wire format.", nil, nil),
		age:     prometheus.NewDesc("fleet_heartbeat_age_seconds", "Age of the workers' last heartbeats on Redis's clock, across alive and stale workers.", nil, nil),
		quiet:   prometheus.NewDesc("fleet_workers_quiet", "Alive workers an operator quieted: they finish their running jobs and take no new ones.", nil, nil),
		skipped: prometheus.NewDesc("fleet_targets_skipped", "Alive workers left out of Prometheus discovery (/api/fleet/targets) for a missing or unusable metrics_url.", nil, nil),
	}
}

// Describe sends the descriptors of every metric.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.workers, c.alive, c.stale, c.invalid, c.age, c.skipped, c.quiet} {
		ch <- d
	}
}

// Collect reads the fleet and sends its metrics; when Redis does not
// answer, only fleet_up 0, so that no stale count pretends to be current.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	f, err := c.r.List(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.up, 1)
	for _, st := range States {
		gauge(c.workers, f.Summary.ByState[st], st)
	}
	gauge(c.alive, f.Summary.Alive)
	gauge(c.stale, f.Summary.Stale)
	gauge(c.invalid, f.Summary.Invalid)
	_, skipped := targets(f)
	gauge(c.skipped, skipped)
	quiet := 0
	for _, w := range f.Workers {
		if w.Quiet && w.Health == Alive {
			quiet++
		}
	}
	gauge(c.quiet, quiet)
	ch <- ageSummary(c.age, f.Workers)
}

// ageSummary is one summary across the workers' beat ages, with exact
// quantiles (nearest rank): one series per quantile, not per worker.
func ageSummary(d *prometheus.Desc, ws []Worker) prometheus.Metric {
	ages := make([]float64, 0, len(ws))
	sum := 0.0
	for _, w := range ws {
		if w.Health == Invalid {
			continue
		}
		a := w.LastBeatAge.Seconds()
		ages = append(ages, a)
		sum += a
	}
	slices.Sort(ages)
	q := make(map[float64]float64, len(ageQuantiles))
	for _, phi := range ageQuantiles {
		q[phi] = math.NaN() // no worker: no age, as client_golang reports an empty summary
		if len(ages) > 0 {
			rank := int(math.Ceil(phi*float64(len(ages)))) - 1
			q[phi] = ages[max(rank, 0)]
		}
	}
	return prometheus.MustNewConstSummary(d, uint64(len(ages)), sum, q)
}
