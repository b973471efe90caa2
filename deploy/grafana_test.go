package deploy

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaTarget struct {
	Datasource *datasourceRef `json:"datasource"`
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	QueryType  string         `json:"queryType"` // Loki: range or instant
	Step       string         `json:"step"`      // Loki: a fixed step; empty is Grafana's
}

type grafanaPanel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Datasource  *datasourceRef  `json:"datasource"`
	GridPos     *struct{}       `json:"gridPos"`
	Targets     []grafanaTarget `json:"targets"`
	Panels      []grafanaPanel  `json:"panels"` // a row's panels
	FieldConfig struct {
		Defaults struct {
			Unit     string `json:"unit"`
			Mappings []struct {
				Type    string `json:"type"`
				Options map[string]struct {
					Text string `json:"text"`
				} `json:"options"`
			} `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Editable   *bool          `json:"editable"` // Grafana's default: true
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Datasource *datasourceRef `json:"datasource"`
			Definition string         `json:"definition"`
			Query      any            `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string         `json:"name"`
			Datasource *datasourceRef `json:"datasource"`
			Expr       string         `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

// expr is a query of the dashboard with where it came from.
type dashboardExpr struct {
	where, dsType, expr string
}

// provisionedDatasources maps each provisioned uid to its type.
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	var prov struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"datasources"`
	}
	decodeYAMLFile(t, filepath.Join(deployDir(t), "grafana", "provisioning", "datasources", "datasources.yaml"), &prov)
	var compose struct {
		Services map[string]any `json:"services"`
	}
	decodeYAMLFile(t, filepath.Join(deployDir(t), "docker-compose.yml"), &compose)
	uids := map[string]string{}
	for _, ds := range prov.Datasources {
		if ds.UID == "" {
			t.Errorf("data source %s has no fixed uid", ds.Name)
		}
		if _, dup := uids[ds.UID]; dup {
			t.Errorf("data source uid %s is used twice", ds.UID)
		}
		uids[ds.UID] = ds.Type
		u, err := url.Parse(ds.URL)
		if err != nil || compose.Services[u.Hostname()] == nil {
			t.Errorf("data source %s: url %q is not a service of docker-compose.yml", ds.Name, ds.URL)
		}
	}
	if got := slices.Sorted(maps.Values(uids)); !slices.Equal(got, []string{"loki", "prometheus"}) {
		t.Errorf("provisioned data source types = %v, want loki and prometheus", got)
	}
	return uids
}

// loadDashboards reads every dashboard JSON of deploy/grafana/dashboards.
func loadDashboards(t *testing.T) map[string]grafanaDashboard {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(deployDir(t), "grafana", "dashboards", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards (%v)", err)
	}
	out := map[string]grafanaDashboard{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s is not a valid dashboard: %v", filepath.Base(p), err)
		}
		out[filepath.Base(p)] = d
	}
	return out
}

// walkPanels visits every panel, the panels inside rows included.
func walkPanels(panels []grafanaPanel, visit func(p grafanaPanel)) {
	for _, p := range panels {
		visit(p)
		walkPanels(p.Panels, visit)
	}
}

// queries returns every query of a dashboard: panel targets, annotations,
// and the selectors inside the template variables' label_values().
func queries(t *testing.T, d grafanaDashboard, uids map[string]string) []dashboardExpr {
	t.Helper()
	var out []dashboardExpr
	walkPanels(d.Panels, func(p grafanaPanel) {
		for _, tg := range p.Targets {
			ds := tg.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			if ds != nil && tg.Expr != "" {
				out = append(out, dashboardExpr{fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), uids[ds.UID], tg.Expr})
			}
		}
	})
	for _, a := range d.Annotations.List {
		if a.Datasource != nil && a.Expr != "" {
			out = append(out, dashboardExpr{"annotation " + a.Name, uids[a.Datasource.UID], a.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Datasource == nil || v.Definition == "" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		out = append(out, dashboardExpr{"variable " + v.Name, uids[v.Datasource.UID], m[1]})
	}
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

func TestDashboardDatasources(t *testing.T) {
	uids := provisionedDatasources(t)
	check := func(where string, ds *datasourceRef) {
		if ds == nil {
			t.Errorf("%s: no datasource", where)
			return
		}
		typ, ok := uids[ds.UID]
		if !ok {
			t.Errorf("%s: datasource uid %q is not provisioned (have %v)", where, ds.UID, slices.Sorted(maps.Keys(uids)))
		} else if ds.Type != typ {
			t.Errorf("%s: datasource type %q, but uid %s is a %s", where, ds.Type, ds.UID, typ)
		}
	}
	for file, d := range loadDashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: a provisioned dashboard needs a fixed uid and a title", file)
		}
		ids := map[int]bool{}
		walkPanels(d.Panels, func(p grafanaPanel) {
			where := fmt.Sprintf("%s panel %q", file, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: id %d is used twice", where, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil {
				t.Errorf("%s: no gridPos", where)
			}
			if p.Type == "row" {
				return
			}
			check(where, p.Datasource)
			for _, tg := range p.Targets {
				if tg.Datasource != nil {
					check(where+" target "+tg.RefID, tg.Datasource)
				}
			}
		})
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check(file+" variable "+v.Name, v.Datasource)
			}
		}
		for _, a := range d.Annotations.List {
			check(file+" annotation "+a.Name, a.Datasource)
		}
	}
}

// TestDashboardEditableAgreesWithProvisioning: Grafana lets users change a
// dashboard whose editable is true, but a provider with allowUiUpdates
// false never saves the change; the two must say the same.
func TestDashboardEditableAgreesWithProvisioning(t *testing.T) {
	var prov struct {
		Providers []struct {
			Name           string `json:"name"`
			AllowUIUpdates bool   `json:"allowUiUpdates"`
		} `json:"providers"`
	}
	decodeYAMLFile(t, filepath.Join(deployDir(t), "grafana", "provisioning", "dashboards", "dashboards.yaml"), &prov)
	if len(prov.Providers) != 1 {
		t.Fatalf("dashboards.yaml has %d providers, want the one that loads deploy/grafana/dashboards", len(prov.Providers))
	}
	allow := prov.Providers[0].AllowUIUpdates
	for file, d := range loadDashboards(t) {
		editable := d.Editable == nil || *d.Editable
		if editable != allow {
			t.Errorf("%s: editable is %v, but provider %s has allowUiUpdates: %v", file, editable, prov.Providers[0].Name, allow)
		}
	}
}

// Panel types that draw numbers, and units of Grafana's value formats
// (packages/grafana-data/src/valueFormats/categories.ts) that suit
// botfleet's panels: a misspelt unit is no unit.
var (
	numericPanels = []string{"stat", "singlestat", "gauge", "bargauge", "timeseries", "graph", "barchart",
		"histogram", "piechart", "table", "state-timeline", "status-history", "heatmap"}
	grafanaUnits = []string{"none", "short", "string", "percent", "percentunit", "bytes", "decbytes",
		"mbytes", "decmbytes", "ns", "µs", "ms", "s", "m", "h", "d", "dtdurations", "ops", "reqps", "rps",
		"wps", "cps", "opm", "rpm", "dateTimeAsIso", "dateTimeFromNow", "bool"}
)

// TestDashboardPanelUnits is Grafana's linter rule panel-units-rule: every
// panel that draws numbers says their unit, unless it maps each value to a
// text (the worker state timeline).
func TestDashboardPanelUnits(t *testing.T) {
	for file, d := range loadDashboards(t) {
		walkPanels(d.Panels, func(p grafanaPanel) {
			defaults := p.FieldConfig.Defaults
			if !slices.Contains(numericPanels, p.Type) || len(defaults.Mappings) > 0 {
				return
			}
			switch unit := defaults.Unit; {
			case unit == "":
				t.Errorf("%s panel %q (%s): no unit (fieldConfig.defaults.unit)", file, p.Title, p.Type)
			case !slices.Contains(grafanaUnits, unit):
				t.Errorf("%s panel %q: unit %q is not one of Grafana's (%v)", file, p.Title, unit, grafanaUnits)
			}
		})
	}
}

// TestDashboardFromDesign checks the design's panels, queries and the
// template variables are in botfleet.json.
func TestDashboardFromDesign(t *testing.T) {
	d := loadDashboards(t)["botfleet.json"]
	var rows []string
	var stateMappings map[string]string
	walkPanels(d.Panels, func(p grafanaPanel) {
		if p.Type == "row" {
			rows = append(rows, p.Title)
		}
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "worker_state{") {
				stateMappings = map[string]string{}
				for _, m := range p.FieldConfig.Defaults.Mappings {
					for k, v := range m.Options {
						stateMappings[k] = v.Text
					}
				}
			}
		}
	})
	// The design's rows, in its order, then the operator's (issue 11).
	wantRows := []string{"Worker Fleet Status", "Resource Usage", "Job Processing", "Error Analysis", "System Health", "Operations"}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows = %v, want %v", rows, wantRows)
	}
	wantStates := map[string]string{"0": "STARTING", "1": "IDLE", "2": "BUSY", "3": "STOPPING", "4": "STOPPED"}
	if !maps.Equal(stateMappings, wantStates) {
		t.Errorf("worker_state value mappings = %v, want %v", stateMappings, wantStates)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Equal(vars, []string{"deployment_env", "region", "worker"}) {
		t.Errorf("template variables = %v, want [deployment_env region worker]", vars)
	}

	// The design's example queries, once the dashboard's label matchers are
	// taken out, and its LogQL examples adapted to Alloy's labels (its
	// "| json | ..." filters on structured metadata instead).
	var stripped []string
	var logql []string
	for _, q := range queries(t, d, provisionedDatasources(t)) {
		switch q.dsType {
		case "prometheus":
			stripped = append(stripped, promMatchers.ReplaceAllString(q.expr, ""))
		case "loki":
			logql = append(logql, q.expr)
		}
	}
	for _, want := range []string{
		"worker_state",
		"worker_memory_bytes / 1024 / 1024",
		"rate(worker_jobs_processed_total[5m])",
		"rate(worker_jobs_failed_total[5m]) / rate(worker_jobs_processed_total[5m])",
	} {
		if !slices.ContainsFunc(stripped, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no panel runs the design's query %s", want)
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`^\{service="worker", level="ERROR"[^}]*\} \|= "browser"`),
		regexp.MustCompile(`^\{[^}]*deployment_env=~"\$deployment_env"[^}]*\} \| job_id != ""`),
	} {
		if !slices.ContainsFunc(logql, want.MatchString) {
			t.Errorf("no Loki panel matches the design's example %s", want)
		}
	}
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// substituteVars replaces Grafana's variables with values Prometheus parses:
// its interval variables with a duration, the dashboard's with ".*" (they
// are only used in regex matchers).
func substituteVars(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		name, _, _ = strings.Cut(name, ":")
		if strings.HasPrefix(name, "__") {
			return "5m"
		}
		return ".*"
	})
}

// TestDashboardPromQLParses puts every PromQL query of the dashboards into
// a rules file as a recording rule and has promtool parse it; no Prometheus
// server runs here.
func TestDashboardPromQLParses(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool", promtoolPackage)
	uids := provisionedDatasources(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
	n := 0
	for file, d := range loadDashboards(t) {
		for _, q := range queries(t, d, uids) {
			if q.dsType != "prometheus" {
				continue
			}
			checkMetricNames(t, file+" "+q.where, q.expr)
			n++
			fmt.Fprintf(&b, "      # %s %s\n      - record: dashboard:query_%d\n        expr: |\n          %s\n",
				file, q.where, n, strings.ReplaceAll(substituteVars(q.expr), "\n", "\n          "))
		}
	}
	if n == 0 {
		t.Fatal("no PromQL queries found in the dashboards")
	}
	path := filepath.Join(t.TempDir(), "dashboard_queries.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runTool(t, filepath.Dir(path), nil, promtool, "check", "rules", path)
	if r.code != 0 {
		t.Fatalf("promtool rejects dashboard queries:\n%s%s\nqueries:\n%s", r.stdout, r.stderr, b.String())
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", n); !strings.Contains(r.stdout, want) {
		t.Errorf("promtool check rules: %q not in\n%s", want, r.stdout)
	}
}
