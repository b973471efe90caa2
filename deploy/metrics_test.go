package deploy

import (
	"regexp"
	"strings"
	"testing"
)

// contractMetrics are the metric families botfleet's processes export
// (docs/wire-format.md, and the monitoring, runtime and fleet issues), with
// their type where the type adds series suffixes. Alerts and panels may only
// use these, so a misspelt name fails here instead of showing an empty panel.
var contractMetrics = map[string]string{
	"worker_state":                            "gauge",
	"worker_memory_bytes":                     "gauge",
	"worker_cpu_percent":                      "gauge",
	"worker_uptime_seconds":                   "gauge",
	"worker_threads":                          "gauge",
	"worker_open_fds":                         "gauge",
	"worker_jobs_processed_total":             "counter",
	"worker_jobs_failed_total":                "counter",
	"worker_job_duration_seconds":             "histogram",
	"worker_heartbeat_failures_total":         "counter",
	"worker_last_heartbeat_timestamp_seconds": "gauge",
	"worker_info":                             "gauge",
	"bot_info":                                "gauge",
	"bot_jobs_submitted_total":                "counter",
	"bot_frontend_requests_total":             "counter",
	"fleet_workers":                           "gauge",
	"fleet_workers_alive":                     "gauge",
	"fleet_workers_stale":                     "gauge",
	"fleet_workers_invalid":                   "gauge",
	"fleet_heartbeat_age_seconds":             "summary",
	"jobs_queue_pending":                      "gauge",
	"jobs_dead_letters":                       "gauge",
	"jobs_queue_latency_seconds":              "gauge",
	"jobs_queue_backlog":                      "gauge",
	"jobs_queue_backlog_limit":                "gauge",
	"jobs_queue_paused":                       "gauge",
	"worker_job_attempts_total":               "counter",
	"fleet_workers_quiet":                     "gauge",
	"bot_admin_actions_total":                 "counter",
	// Made by Prometheus itself.
	"up":     "gauge",
	"ALERTS": "gauge",
}

// knownMetric reports whether a series name belongs to a contract family,
// or to the standard process_ and go_ collectors.
func knownMetric(name string) bool {
	if strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "go_") {
		return true
	}
	if _, ok := contractMetrics[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		family, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch contractMetrics[family] {
		case "histogram":
			return true
		case "summary":
			return suffix != "_bucket"
		}
	}
	return false
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// promKeywords are PromQL words that look like metric names.
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "inf": true, "nan": true,
}

// metricNames returns the metric names an expression selects: identifiers
// outside strings, label matchers, ranges and grouping clauses that are not
// keywords and not function calls. Good enough for the expressions of this
// directory; promtool checks their syntax.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if promKeywords[strings.ToLower(name)] || strings.HasPrefix(rest, "(") {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number, e.g. 1e3
		}
		names = append(names, name)
	}
	return names
}

// checkMetricNames fails the test for every name in expr outside the contract.
func checkMetricNames(t *testing.T, where, expr string) {
	t.Helper()
	for _, name := range metricNames(expr) {
		if !knownMetric(name) {
			t.Errorf("%s: metric %q is not one botfleet exports (contractMetrics in metrics_test.go): %s", where, name, expr)
		}
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"selector with matchers", `worker_state{worker_id=~"$worker"}`, []string{"worker_state"}},
		{"design error rate", `rate(worker_jobs_failed_total[5m]) / rate(worker_jobs_processed_total[5m])`,
			[]string{"worker_jobs_failed_total", "worker_jobs_processed_total"}},
		{"grouping labels are not metrics", `sum by (le, type) (rate(worker_job_duration_seconds_bucket[5m]))`,
			[]string{"worker_job_duration_seconds_bucket"}},
		{"numbers and keywords", `worker_memory_bytes > 1024 * 1024 and on() up == 1`,
			[]string{"worker_memory_bytes", "up"}},
		{"strings hide words", `label_replace(up, "worker_id", "$1", "instance", "(.*)")`, []string{"up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := metricNames(tt.expr)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("metricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
	for _, name := range []string{"worker_job_duration_seconds_bucket", "fleet_heartbeat_age_seconds_count", "process_cpu_seconds_total"} {
		if !knownMetric(name) {
			t.Errorf("knownMetric(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"worker_open_files", "fleet_heartbeat_age_seconds_bucket", "worker_state_total"} {
		if knownMetric(name) {
			t.Errorf("knownMetric(%q) = true, want false", name)
		}
	}
}
