package fleet

import (
	"net"
	"net/url"
)

// targetGroup is one entry of Prometheus HTTP service discovery
// (http_sd_configs): the addresses to scrape and the labels they carry.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// targets returns a target group per alive worker, built from its
// metrics_url and identity, and how many alive workers were left out for a
// missing or unusable metrics_url.
//
// Stale workers are left out on purpose: a worker that stopped beating is
// reported by fleet_workers_stale (alert WorkerHeartbeatStale) and leaves
// this list within 1.5 intervals, so that up{job="bot-workers"} == 0
// (alert WorkerDown) means, in the main, a worker that still beats but
// cannot be scraped. Prometheus itself takes longer to drop the target (its
// http_sd refresh, then up to 5 s twice inside its discovery manager), which
// is why WorkerDown waits 2 minutes (deploy/prometheus/rules). Scraping
// stale workers until their hash expires would raise both alerts for every
// crash.
func targets(f Fleet) (groups []targetGroup, skipped int) {
	groups = []targetGroup{} // [] and not null: Prometheus wants a list
	for _, w := range f.Workers {
		if w.Health != Alive {
			continue
		}
		g, ok := targetOf(w)
		if !ok {
			skipped++
			continue
		}
		groups = append(groups, g)
	}
	return groups, skipped
}

func targetOf(w Worker) (targetGroup, bool) {
	u, err := url.Parse(w.MetricsURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return targetGroup{}, false
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	path := u.Path
	if path == "" {
		path = "/metrics"
	}
	labels := map[string]string{
		"__metrics_path__": path,
		"__scheme__":       u.Scheme,
		"worker_id":        w.WorkerID,
		"hostname":         w.Hostname,
		"deployment_env":   w.DeploymentEnv,
		"region":           w.Region,
		"container_id":     w.ContainerID,
		"service":          w.Service,
	}
	for k, vs := range u.Query() {
		if !labelName(k) {
			return targetGroup{}, false
		}
		labels["__param_"+k] = vs[0]
	}
	return targetGroup{Targets: []string{addr}, Labels: labels}, true
}

// labelName reports whether __param_<s> is a valid Prometheus label name;
// an invalid one would make Prometheus reject the whole list.
func labelName(s string) bool {
	for _, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}
