package deploy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The dashboard's Loki queries, checked against what Alloy sends and what
// Grafana does with a range.

var (
	logSelector    = regexp.MustCompile(`\{([^{}]*)\}`)
	logMatcher     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	logLabelFilter = regexp.MustCompile(`\|\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|>=|<=|==|=|>|<)`)
	logParser      = regexp.MustCompile(`\|\s*(json|logfmt|regexp|pattern|unpack)\b`)
)

// Values the pipelines can give the level and service labels.
var (
	logLevels   = []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", ""}
	logServices = []string{"bot", "worker", "discord_bot", "telegram_bot", "web_frontend", "sms_gateway"}
)

// alloyStreamFields returns the stream labels and the structured metadata
// config.alloy gives every line.
func alloyStreamFields(t *testing.T) (labels, metadata []string) {
	t.Helper()
	proc := loadAlloy(t, "config.alloy").ComponentsNamed("loki.process")[0]
	labels = slices.Sorted(maps.Keys(proc.Block("stage.labels")[0].Attrs["values"].Object))
	metadata = slices.Sorted(maps.Keys(proc.Block("stage.structured_metadata")[0].Attrs["values"].Object))
	return labels, metadata
}

// TestDashboardLokiLabels: LogQL has no parser here, so check what matters
// most: the stream selectors use the labels Alloy sets (config.alloy's
// stage.labels, with their real values), and label filters before any
// parser stage use its structured metadata.
func TestDashboardLokiLabels(t *testing.T) {
	labels, metadata := alloyStreamFields(t)
	uids := provisionedDatasources(t)
	n := 0
	for file, d := range loadDashboards(t) {
		for _, q := range queries(t, d, uids) {
			if q.dsType != "loki" {
				continue
			}
			n++
			where := file + " " + q.where
			selectors := logSelector.FindAllStringSubmatch(q.expr, -1)
			if len(selectors) == 0 {
				t.Errorf("%s: no stream selector in %s", where, q.expr)
			}
			for _, sel := range selectors {
				nonEmpty := false
				for _, m := range logMatcher.FindAllStringSubmatch(sel[1], -1) {
					name, op, value := m[1], m[2], m[3]
					if !slices.Contains(labels, name) {
						t.Errorf("%s: selector label %q is not one Alloy sets (%v)", where, name, labels)
					}
					if (op == "=" || op == "=~") && !strings.Contains(value, "$") {
						nonEmpty = nonEmpty || value != "" && value != ".*"
						checkLabelValues(t, where, name, op, value)
					}
				}
				if !nonEmpty {
					t.Errorf("%s: Loki needs a matcher that cannot match empty in %s", where, sel[0])
				}
			}
			filters := q.expr
			if loc := logParser.FindStringIndex(filters); loc != nil {
				filters = filters[:loc[0]]
			}
			for _, m := range logLabelFilter.FindAllStringSubmatch(filters, -1) {
				if !slices.Contains(metadata, m[1]) && !slices.Contains(labels, m[1]) {
					t.Errorf("%s: label filter on %q, which is neither a label nor structured metadata (%v)", where, m[1], metadata)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no Loki queries in the dashboards")
	}
}

// checkLabelValues checks literal values of level and service matchers.
func checkLabelValues(t *testing.T, where, name, op, value string) {
	t.Helper()
	allowed := map[string][]string{"level": logLevels, "service": logServices}[name]
	if allowed == nil {
		return
	}
	alternatives := []string{value}
	if op == "=~" {
		alternatives = strings.Split(value, "|")
	}
	for _, v := range alternatives {
		if !slices.Contains(allowed, v) {
			t.Errorf("%s: %s value %q is never written (want one of %q)", where, name, v, allowed)
		}
	}
}

// lokiTarget is a Loki query of a panel, with the step fixed on it, if any.
type lokiTarget struct {
	where, expr, step, queryType string
}

// lokiTargets returns the Loki queries of a dashboard's panels.
func lokiTargets(d grafanaDashboard, uids map[string]string) []lokiTarget {
	var out []lokiTarget
	walkPanels(d.Panels, func(p grafanaPanel) {
		for _, tg := range p.Targets {
			ds := tg.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			if ds != nil && uids[ds.UID] == "loki" && tg.Expr != "" {
				out = append(out, lokiTarget{fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Expr, tg.Step, tg.QueryType})
			}
		}
	})
	return out
}

var (
	logQLString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")
	logQLRange    = regexp.MustCompile(`\[([^\]]*)\]`) // outside strings, only a range has brackets
	logQLTemplate = regexp.MustCompile(`\{\{-?\s*\.([a-zA-Z_][a-zA-Z0-9_]*)`)
)

// logRangeProblems explains each range of a LogQL metric query whose
// windows can overlap from one point of the graph to the next, or leave
// lines between them: count_over_time, rate and the other range
// aggregations count a line in every window that holds it, so [5m] at a
// 15 s step counts each line twenty times. The range must be the step:
// $__auto, which Grafana sets to the query's step, or the step fixed on
// the target. An instant query has one window.
func logRangeProblems(expr, step, queryType string) []string {
	if queryType == "instant" {
		return nil
	}
	var out []string
	for _, m := range logQLRange.FindAllStringSubmatch(logQLString.ReplaceAllString(expr, `""`), -1) {
		r := strings.TrimSpace(m[1])
		if r == "$__auto" || step != "" && r == step {
			continue
		}
		want := "[$__auto]"
		if step != "" {
			want += " or the target's step [" + step + "]"
		}
		out = append(out, fmt.Sprintf("range [%s] at Grafana's step counts a line in more than one point (or in none); use %s", r, want))
	}
	return out
}

func TestLogRangeProblems(t *testing.T) {
	tests := []struct {
		name, expr, step, queryType string
		bad                         bool
	}{
		{"fixed range at the automatic step", `sum(count_over_time({level="ERROR"}[5m]))`, "", "range", true},
		{"range is the step", `sum(count_over_time({level="ERROR"}[$__auto]))`, "", "range", false},
		{"range equals the target's step", `rate({service="bot"}[5m])`, "5m", "range", false},
		{"range shorter than the target's step", `rate({service="bot"}[1m])`, "5m", "range", true},
		{"$__interval is not Loki's step", `count_over_time({service="bot"} |= "x" [$__interval])`, "", "range", true},
		{"an instant query has one window", `count_over_time({service="bot"}[1h])`, "", "instant", false},
		{"brackets in a string are no range", `{service="bot"} |~ "[0-9]+ jobs" | json`, "", "range", false},
		{"no range aggregation", `{service="bot"} | job_id != ""`, "", "range", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := logRangeProblems(tt.expr, tt.step, tt.queryType)
			if bad := len(got) > 0; bad != tt.bad {
				t.Errorf("logRangeProblems(%s, step %q) = %q, want a problem: %v", tt.expr, tt.step, got, tt.bad)
			}
		})
	}
}

// TestDashboardLokiRanges: every count_over_time, rate or other range
// aggregation over logs has a range the panel's step cannot overlap.
func TestDashboardLokiRanges(t *testing.T) {
	uids := provisionedDatasources(t)
	for file, d := range loadDashboards(t) {
		for _, tg := range lokiTargets(d, uids) {
			for _, p := range logRangeProblems(tg.expr, tg.step, tg.queryType) {
				t.Errorf("%s %s: %s\n%s", file, tg.where, p, tg.expr)
			}
		}
	}
}

// parserProblems explains a parser stage (| json, | logfmt, ...) that
// serves nothing the labels and structured metadata do not already give:
// the parser repeats each of those as name_extracted beside the original,
// and a filter on one of them belongs before the parser, where it is
// cheap. A parser is for the fields that are neither.
func parserProblems(expr string, labels, metadata []string) []string {
	loc := logParser.FindStringIndex(expr)
	if loc == nil {
		return nil
	}
	after := expr[loc[1]:]
	var used []string
	for _, m := range logLabelFilter.FindAllStringSubmatch(logQLString.ReplaceAllString(after, `""`), -1) {
		used = append(used, m[1])
	}
	for _, m := range logQLTemplate.FindAllStringSubmatch(after, -1) {
		used = append(used, m[1])
	}
	var out []string
	fresh := false
	for _, name := range used {
		if slices.Contains(labels, name) || slices.Contains(metadata, name) {
			out = append(out, fmt.Sprintf("%s is a label or structured metadata: filter on it before the parser, without parsing", name))
		} else {
			fresh = true
		}
	}
	if !fresh {
		out = append(out, "the parser gives nothing the query uses but labels and metadata, repeated as *_extracted: drop it")
	}
	return out
}

func TestParserProblems(t *testing.T) {
	labels, metadata := []string{"level", "service"}, []string{"job_id", "worker_id"}
	tests := []struct {
		name, expr string
		bad        bool
	}{
		{"json to filter on metadata", `{level="ERROR"} | json | job_id != ""`, true},
		{"metadata filtered without a parser", `{level="ERROR"} | job_id != ""`, false},
		{"json for a field of the line", `{level="ERROR"} | json | error=~".*timeout.*"`, false},
		{"json for a field, metadata after it", `{level="ERROR"} | json | error != "" | worker_id="w"`, true},
		{"json for line_format", `{level="ERROR"} | json | line_format "{{.message}}"`, false},
		{"json and nothing else", `{level="ERROR"} | json`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parserProblems(tt.expr, labels, metadata)
			if bad := len(got) > 0; bad != tt.bad {
				t.Errorf("parserProblems(%s) = %q, want a problem: %v", tt.expr, got, tt.bad)
			}
		})
	}
}

// TestDashboardLokiParsers: no panel parses its lines only to reach what
// Loki already stores as labels and structured metadata.
func TestDashboardLokiParsers(t *testing.T) {
	labels, metadata := alloyStreamFields(t)
	uids := provisionedDatasources(t)
	for file, d := range loadDashboards(t) {
		for _, tg := range lokiTargets(d, uids) {
			for _, p := range parserProblems(tg.expr, labels, metadata) {
				t.Errorf("%s %s: %s\n%s", file, tg.where, p, tg.expr)
			}
		}
	}
}
