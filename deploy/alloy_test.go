package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/logging"
)

// alloyLabels are the only stream labels the pipelines may set: few values
// each (Loki's label guidance). Per-process identity is structured metadata.
var alloyLabels = []string{"deployment_env", "level", "region", "service"}

// logFields are the top-level fields of the logging package's JSON records
// (docs/wire-format.md); stage.json may only read these.
var logFields = []string{"timestamp", "levelname", "logger", "message", "service", "worker_id", "job_id",
	"hostname", "container_id", "deployment_env", "region", "source"}

func loadAlloy(t *testing.T, name string) *alloyFile {
	t.Helper()
	f, errs := parseAlloy(string(readFile(t, filepath.Join(deployDir(t), "alloy", name))))
	for _, err := range errs {
		t.Errorf("alloy/%s: %v", name, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return f
}

func TestAlloyFilesWellFormed(t *testing.T) {
	for _, name := range []string{"config.alloy", "files.alloy"} {
		t.Run(name, func(t *testing.T) {
			f := loadAlloy(t, name)
			// alloy fmt --test: Alloy's own format, tabs and aligned "=".
			if err := alloyFmtDiff(string(readFile(t, filepath.Join(deployDir(t), "alloy", name)))); err != nil {
				t.Errorf("alloy/%s: %v", name, err)
			}
			// Every component but a source feeds something: an unreferenced
			// loki.process or loki.write means a pipeline that goes nowhere.
			used := map[string]bool{}
			for _, r := range f.Refs {
				used[r.Path[:strings.LastIndex(r.Path, ".")]] = true
			}
			for _, b := range f.Blocks {
				if !strings.HasPrefix(b.Name, "loki.source.") && !used[b.ID()] {
					t.Errorf("%s %q (line %d) is defined but nothing reads it", b.Name, b.Label, b.Line)
				}
			}
		})
	}
}

// TestAlloyCheckerRejects shows the checker catches what broke the design's
// alloy-config.river, and the other mistakes it exists for.
func TestAlloyCheckerRejects(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{
			name: "two attributes on one line",
			src:  "discovery.docker \"c\" {\n  host = \"unix:///var/run/docker.sock\" refresh_interval = \"5s\"\n}\n",
			want: "two statements on one line",
		},
		{
			name: "reference to an undefined component (the design's loki.write.loki)",
			src: "loki.process \"bot_logs\" {\n  forward_to = [loki.write.loki.receiver]\n}\n" +
				"loki.source.docker \"c\" {\n  host = \"unix:///var/run/docker.sock\"\n  targets = []\n  forward_to = [loki.process.bot_logs.receiver]\n}\n",
			want: "does not define",
		},
		{
			name: "unknown export",
			src:  "loki.write \"w\" {\n}\nloki.process \"p\" {\n  forward_to = [loki.write.w.reciever]\n}\n",
			want: `export "reciever"`,
		},
		{
			name: "string not closed",
			src:  "loki.write \"w\" {\n  endpoint {\n    url = \"http://loki:3100\n  }\n}\n",
			want: "not closed",
		},
		{
			name: "block not closed",
			src:  "loki.write \"w\" {\n  endpoint {\n    url = \"http://loki:3100\"\n}\n",
			want: "missing }",
		},
		{
			name: "brackets do not match",
			src:  "loki.process \"p\" {\n  forward_to = [loki.write.w.receiver}\n}\nloki.write \"w\" {\n}\n",
			want: "expected ]",
		},
		{
			name: "multi-line object without trailing comma",
			src:  "loki.process \"p\" {\n  forward_to = []\n  stage.labels {\n    values = {\n      level = \"\"\n    }\n  }\n}\n",
			want: "missing ','",
		},
		{
			name: "component without a label",
			src:  "loki.write {\n}\n",
			want: "has no label",
		},
		{
			name: "component defined twice",
			src:  "loki.write \"w\" {\n}\nloki.write \"w\" {\n}\n",
			want: "already defined",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parseAlloy(tt.src)
			if len(errs) == 0 {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("error %q, want one containing %q", errs[0], tt.want)
			}
		})
	}
	ok := "// fine\nloki.write \"w\" {\n  endpoint { url = sys.env(\"X\") + \"/push\" }\n}\n" +
		"loki.process \"p\" {\n  forward_to = [\n    loki.write.w.receiver,\n  ]\n  stage.decolorize {}\n}\n"
	if _, errs := parseAlloy(ok); len(errs) > 0 {
		t.Errorf("valid file rejected: %v", errs)
	}
}

// TestAlloyDockerPipeline checks config.alloy's wiring: discovery.docker ->
// discovery.relabel -> loki.source.docker (with the relabel rules) ->
// loki.process -> loki.write.
func TestAlloyDockerPipeline(t *testing.T) {
	f := loadAlloy(t, "config.alloy")
	for _, name := range []string{"discovery.docker", "discovery.relabel", "loki.source.docker", "loki.process", "loki.write"} {
		if len(f.ComponentsNamed(name)) != 1 {
			t.Fatalf("config.alloy: want exactly one %s", name)
		}
	}
	dd, dr := f.ComponentsNamed("discovery.docker")[0], f.ComponentsNamed("discovery.relabel")[0]
	src, proc, w := f.ComponentsNamed("loki.source.docker")[0], f.ComponentsNamed("loki.process")[0], f.ComponentsNamed("loki.write")[0]
	wantRefs := []struct {
		b       *alloyBlock
		attr    string
		wantRef string
	}{
		{dr, "targets", dd.ID() + ".targets"},
		{src, "targets", dr.ID() + ".output"},
		{src, "relabel_rules", dr.ID() + ".rules"},
		{src, "forward_to", proc.ID() + ".receiver"},
		{proc, "forward_to", w.ID() + ".receiver"},
	}
	for _, tt := range wantRefs {
		if got := tt.b.Attrs[tt.attr].Refs; !slices.Equal(got, []string{tt.wantRef}) {
			t.Errorf("%s.%s reads %v, want %s", tt.b.ID(), tt.attr, got, tt.wantRef)
		}
	}

	f2 := loadAlloy(t, "files.alloy")
	for _, name := range []string{"local.file_match", "loki.source.file", "loki.process", "loki.write"} {
		if len(f2.ComponentsNamed(name)) != 1 {
			t.Fatalf("files.alloy: want exactly one %s", name)
		}
	}
	fm := f2.ComponentsNamed("local.file_match")[0]
	targets := fm.Attrs["path_targets"]
	if len(targets.List) != 1 || !strings.HasSuffix(targets.List[0].Object["__path__"].Src, `/**/*.jsonl"`) {
		t.Errorf("files.alloy: path_targets = %s, want a __path__ ending in /**/*.jsonl", targets.Src)
	}
}

// TestAlloyRelabelKeepsBotAndWorker runs discovery.relabel's rules over the
// targets discovery.docker makes for the compose stack.
func TestAlloyRelabelKeepsBotAndWorker(t *testing.T) {
	rules := relabelRules(t, loadAlloy(t, "config.alloy").ComponentsNamed("discovery.relabel")[0])
	meta := func(service, name string) map[string]string {
		return map[string]string{
			"__meta_docker_container_label_com_docker_compose_service": service,
			"__meta_docker_container_name":                             "/" + name,
			"__meta_docker_container_id":                               strings.Repeat("ab", 32),
		}
	}
	tests := []struct {
		name    string
		in      map[string]string
		kept    bool
		service string
	}{
		{"worker", meta("worker", "botfleet-worker-2"), true, "worker"},
		{"bot", meta("bot", "botfleet-bot-1"), true, "bot"},
		{"redis", meta("redis", "botfleet-redis-1"), false, ""},
		{"grafana", meta("grafana", "botfleet-grafana-1"), false, ""},
		{"not compose", map[string]string{"__meta_docker_container_name": "/worker"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kept := applyRelabel(t, rules, tt.in)
			if kept != tt.kept {
				t.Fatalf("kept = %v, want %v", kept, tt.kept)
			}
			if !kept {
				return
			}
			got = withoutInternal(got)
			want := map[string]string{"service": tt.service, "container": strings.TrimPrefix(tt.in["__meta_docker_container_name"], "/")}
			if !maps.Equal(got, want) {
				t.Errorf("labels = %v, want %v", got, want)
			}
		})
	}
}

// relabelRules reads the rule blocks of a discovery.relabel component.
func relabelRules(t *testing.T, b *alloyBlock) []relabelRule {
	t.Helper()
	str := func(r *alloyBlock, name string) *string {
		v, ok := r.Attrs[name]
		if !ok {
			return nil
		}
		if v.Str == nil {
			t.Fatalf("%s: rule attribute %s is not a string literal", b.ID(), name)
		}
		return v.Str
	}
	var rules []relabelRule
	for _, r := range b.Block("rule") {
		var rule relabelRule
		if v, ok := r.Attrs["source_labels"]; ok {
			var isList bool
			if rule.SourceLabels, isList = v.Strings(); !isList {
				t.Fatalf("%s: source_labels is not a list of strings", b.ID())
			}
		}
		rule.Separator, rule.Regex, rule.Replacement = str(r, "separator"), str(r, "regex"), str(r, "replacement")
		if s := str(r, "target_label"); s != nil {
			rule.TargetLabel = *s
		}
		if s := str(r, "action"); s != nil {
			rule.Action = *s
		}
		rules = append(rules, rule)
	}
	return rules
}

// sampleLine is a log line with what the contract says it carries.
type sampleLine struct {
	text           string
	worker, hasJob bool
}

// loggingLines writes records with the real logging package, as the bot and
// a worker do: process context bound on the logger, job_id on the context.
func loggingLines(t *testing.T) []sampleLine {
	t.Helper()
	var buf bytes.Buffer
	h := logging.NewJSONHandler(&buf, &logging.HandlerOptions{Level: slog.LevelDebug})
	deployment := []any{"hostname", "a1b2c3d4e5f6", "container_id", strings.Repeat("a1b2c3d4", 8),
		"deployment_env", "production", "region", "us-west-1"}
	worker := slog.New(h).With(append([]any{"service", "worker", "worker_id", "worker-a1b2c3d4e5f6"}, deployment...)...)
	bot := slog.New(h).With(append([]any{"service", "bot"}, deployment...)...)
	ctx := context.Background()
	job := logging.With(ctx, "job_id", "browser.navigate.k3f9x2")

	var lines []sampleLine
	emit := func(isWorker, hasJob bool, log func()) {
		buf.Reset()
		log()
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			lines = append(lines, sampleLine{l, isWorker, hasJob})
		}
	}
	emit(true, false, func() { worker.InfoContext(ctx, "worker started", "concurrency", 1) })
	emit(true, true, func() { worker.DebugContext(job, "navigating", "url", "https://example.com") })
	emit(true, true, func() { worker.ErrorContext(job, "browser navigation failed", "error", "timeout after 30s") })
	emit(true, true, func() { worker.Log(job, logging.LevelCritical, "browser crashed", "exit_code", 139) })
	emit(false, false, func() { bot.WarnContext(ctx, "frontend slow", "frontend", "web_frontend") })
	emit(false, false, func() { bot.InfoContext(ctx, "job submitted", "type", "browser.navigate") })
	return lines
}

// TestAlloyStageJSONOnLoggingOutput feeds lines written by the logging
// package through both pipelines' stages and checks every field stage.json
// extracts is there, the timestamp is the record's own, and the entry
// leaves with the four labels and the identity as structured metadata.
func TestAlloyStageJSONOnLoggingOutput(t *testing.T) {
	lines := loggingLines(t)
	variants := []struct {
		file    string
		carries []string // structured metadata from the source's labels
	}{
		{"config.alloy", []string{"container", "stream"}},
		{"files.alloy", []string{"filename"}},
	}
	for _, v := range variants {
		t.Run(v.file, func(t *testing.T) {
			f := loadAlloy(t, v.file)
			proc := f.ComponentsNamed("loki.process")[0]
			jsonStages := proc.Block("stage.json")
			if len(jsonStages) != 1 {
				t.Fatalf("want one stage.json, got %d", len(jsonStages))
			}
			exprs := jsonStages[0].Attrs["expressions"].Object
			for name, expr := range exprs {
				if field := sourceName(name, expr); !slices.Contains(logFields, field) {
					t.Errorf("stage.json %s reads %q, which the logging package never writes (fields: %v)", name, field, logFields)
				}
			}
			for _, line := range lines {
				var record map[string]any
				if err := json.Unmarshal([]byte(line.text), &record); err != nil {
					t.Fatalf("logging wrote a line that is not JSON: %v\n%s", err, line.text)
				}
				for name, expr := range exprs {
					field := sourceName(name, expr)
					required := !slices.Contains([]string{"worker_id", "job_id", "logger", "source"}, field) ||
						field == "worker_id" && line.worker || field == "job_id" && line.hasJob
					if _, ok := record[field]; required && !ok {
						t.Errorf("stage.json %s: field %q missing from\n%s", name, field, line.text)
					}
				}

				// The labels the source component gives the line.
				labels := map[string]string{"filename": logFilePath("bot", "")}
				switch {
				case v.file == "config.alloy" && line.worker:
					labels = dockerSourceLabels(t, f, "worker", "botfleet-worker-1", "stdout")
				case v.file == "config.alloy":
					labels = dockerSourceLabels(t, f, "bot", "botfleet-bot-1", "stdout")
				case line.worker:
					labels["filename"] = logFilePath("worker", "worker-a1b2c3d4e5f6")
				}
				e := &logEntry{line: line.text, labels: labels}
				runStages(t, proc, e)
				checkEntry(t, e, record, line, v.carries)
			}
		})
	}
}

// checkEntry checks what leaves loki.process for a JSON line.
func checkEntry(t *testing.T, e *logEntry, record map[string]any, line sampleLine, carries []string) {
	t.Helper()
	if got := slices.Sorted(maps.Keys(e.labels)); !slices.Equal(got, alloyLabels) {
		t.Errorf("stream labels %v, want exactly %v\n%s", got, alloyLabels, line.text)
	}
	for label, field := range map[string]string{"service": "service", "level": "levelname", "deployment_env": "deployment_env", "region": "region"} {
		if e.labels[label] != record[field] {
			t.Errorf("label %s = %q, want the record's %s %q", label, e.labels[label], field, record[field])
		}
	}
	ts, _ := time.Parse(time.RFC3339Nano, record["timestamp"].(string))
	if !e.ts.Equal(ts) || ts.IsZero() {
		t.Errorf("entry time %v, want the record's timestamp %v", e.ts, record["timestamp"])
	}
	md := metadataMap(t, e.metadata)
	want := append([]string{"hostname", "container_id"}, carries...)
	if line.worker {
		want = append(want, "worker_id")
	}
	if line.hasJob {
		want = append(want, "job_id")
	}
	for _, name := range want {
		if md[name] == "" {
			t.Errorf("structured metadata %s missing: %v\n%s", name, md, line.text)
		}
	}
}

// dockerSourceLabels are the labels loki.source.docker gives a line of a
// compose container: discovery.relabel's rules, applied again as its
// relabel_rules with the line's stream, internal labels dropped.
func dockerSourceLabels(t *testing.T, f *alloyFile, service, container, stream string) map[string]string {
	t.Helper()
	labels, kept := applyRelabel(t, relabelRules(t, f.ComponentsNamed("discovery.relabel")[0]), map[string]string{
		"__meta_docker_container_label_com_docker_compose_service": service,
		"__meta_docker_container_name":                             "/" + container,
		"__meta_docker_container_log_stream":                       stream,
	})
	if !kept {
		t.Fatalf("discovery.relabel drops the %s container", service)
	}
	return withoutInternal(labels)
}
