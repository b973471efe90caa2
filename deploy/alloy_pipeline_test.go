package deploy

import (
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"
)

// logEntry is a line on its way through loki.process.
type logEntry struct {
	line      string
	labels    map[string]string
	extracted map[string]any
	metadata  []string // name=value
	ts        time.Time
}

var jmesIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// runStages applies loki.process's stages as Alloy does for the stage kinds
// botfleet's files use (regex, json, timestamp, labels, label_drop,
// structured_metadata), starting, like Alloy, with the labels copied into
// the extracted map. Another kind of stage fails the test until this is
// taught it.
func runStages(t *testing.T, proc *alloyBlock, e *logEntry) {
	t.Helper()
	e.extracted = map[string]any{}
	for k, v := range e.labels {
		e.extracted[k] = v
	}
	for _, st := range proc.Blocks {
		switch st.Name {
		case "stage.regex":
			regexStage(t, st, e)
		case "stage.json":
			var record map[string]any
			if json.Unmarshal([]byte(e.line), &record) != nil {
				continue // not JSON: the line goes on unparsed
			}
			for name, expr := range st.Attrs["expressions"].Object {
				field := name
				if expr.Str == nil {
					t.Fatalf("stage.json %s: expression is not a string", name)
				}
				if *expr.Str != "" {
					field = strings.Trim(*expr.Str, `"`)
				}
				if !jmesIdent.MatchString(field) {
					t.Fatalf("stage.json %s = %q: only top-level keys are simulated; extend runStages", name, *expr.Str)
				}
				if v, ok := record[field]; ok && v != nil {
					e.extracted[name] = v
				}
			}
		case "stage.timestamp":
			src, format := *st.Attrs["source"].Str, *st.Attrs["format"].Str
			layout := map[string]string{"RFC3339Nano": time.RFC3339Nano, "RFC3339": time.RFC3339}[format]
			if layout == "" {
				t.Fatalf("stage.timestamp format %q is not simulated", format)
			}
			if v, ok := e.extracted[src].(string); ok {
				ts, err := time.Parse(layout, v)
				if err != nil {
					t.Errorf("stage.timestamp: %q does not parse as %s: %v", v, format, err)
				}
				e.ts = ts
			}
		case "stage.labels":
			for name, src := range st.Attrs["values"].Object {
				if v, ok := e.extracted[sourceName(name, src)].(string); ok {
					e.labels[name] = v
				}
			}
		case "stage.label_drop":
			names, _ := st.Attrs["values"].Strings()
			for _, n := range names {
				delete(e.labels, n)
			}
		case "stage.structured_metadata":
			// From the extracted map, then from labels, which it moves.
			values := st.Attrs["values"].Object
			for name, src := range values {
				if v, ok := e.extracted[sourceName(name, src)].(string); ok {
					e.metadata = append(e.metadata, name+"="+v)
				}
			}
			for name, src := range values {
				if v, ok := e.labels[sourceName(name, src)]; ok {
					e.metadata = append(e.metadata, name+"="+v)
					delete(e.labels, sourceName(name, src))
				}
			}
		default:
			t.Fatalf("runStages does not simulate %s; extend it", st.Name)
		}
	}
}

// regexStage is stage.regex: the expression runs over the extracted value
// named by source (skipped when there is none) or else the line, and each
// named group of a match is extracted, an empty one too.
func regexStage(t *testing.T, st *alloyBlock, e *logEntry) {
	t.Helper()
	expr := st.Attrs["expression"].Str
	if expr == nil {
		t.Fatalf("stage.regex (line %d): expression is not a string literal", st.Line)
	}
	re, err := regexp.Compile(*expr)
	if err != nil {
		t.Fatalf("stage.regex (line %d): %v", st.Line, err)
	}
	input := e.line
	if src, ok := st.Attrs["source"]; ok {
		if src.Str == nil {
			t.Fatalf("stage.regex (line %d): source is not a string literal", st.Line)
		}
		v, ok := e.extracted[*src.Str].(string)
		if !ok {
			return
		}
		input = v
	}
	m := re.FindStringSubmatch(input)
	if m == nil {
		return
	}
	for i, name := range re.SubexpNames() {
		if i > 0 && name != "" {
			e.extracted[name] = m[i]
		}
	}
}

func sourceName(name string, src alloyValue) string {
	if src.Str == nil || *src.Str == "" {
		return name
	}
	return *src.Str
}

// metadataMap checks the structured metadata has no name twice and returns it.
func metadataMap(t *testing.T, md []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kv := range md {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := out[k]; dup {
			t.Errorf("structured metadata %s is attached twice: %v", k, md)
		}
		out[k] = v
	}
	return out
}

// logFilePath is where the logging package writes a process's lines with
// LOG_TO_FILE=1 and LOG_DIR=/app/logs: logs/workers/<worker_id>.jsonl for a
// worker, logs/<service>/<service>.jsonl otherwise.
func logFilePath(service, workerID string) string {
	if workerID != "" {
		return "/app/logs/workers/" + workerID + ".jsonl"
	}
	return "/app/logs/" + service + "/" + service + ".jsonl"
}

// TestAlloyNonJSONLinePassesThrough: a line that is not JSON (a Go panic on
// stderr, a record torn by a full disk, a line another program wrote) must
// still reach Loki under its service, with no level, from either Alloy
// file: from the container in config.alloy, from the file's path in
// files.alloy.
func TestAlloyNonJSONLinePassesThrough(t *testing.T) {
	docker, files := loadAlloy(t, "config.alloy"), loadAlloy(t, "files.alloy")
	workerLog, botLog := logFilePath("worker", "worker-3f2a9c1b7d4e"), logFilePath("bot", "")
	frontendLog := logFilePath("discord_bot", "")
	tests := []struct {
		name     string
		f        *alloyFile
		line     string
		source   map[string]string // the labels the source component gives the line
		service  string
		metadata map[string]string
	}{
		{
			name: "docker: a Go panic on stderr", f: docker,
			line:    "panic: runtime error: invalid memory address or nil pointer dereference",
			source:  dockerSourceLabels(t, docker, "worker", "botfleet-worker-3", "stderr"),
			service: "worker", metadata: map[string]string{"container": "botfleet-worker-3", "stream": "stderr"},
		},
		{
			name: "file: a worker's record torn by a full disk", f: files,
			line:    `{"timestamp":"2025-05-01T12:00:00.123456Z","levelname":"ERROR","message":"browser navigation fa`,
			source:  map[string]string{"filename": workerLog},
			service: "worker", metadata: map[string]string{"filename": workerLog},
		},
		{
			name: "file: a line another program wrote into the bot's file", f: files,
			line:    "fatal error: runtime: out of memory",
			source:  map[string]string{"filename": botLog},
			service: "bot", metadata: map[string]string{"filename": botLog},
		},
		{
			name: "file: a frontend with a process of its own", f: files,
			line:    "exit status 2",
			source:  map[string]string{"filename": frontendLog},
			service: "discord_bot", metadata: map[string]string{"filename": frontendLog},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &logEntry{line: tt.line, labels: maps.Clone(tt.source)}
			runStages(t, tt.f.ComponentsNamed("loki.process")[0], e)
			if want := map[string]string{"service": tt.service}; !maps.Equal(e.labels, want) {
				t.Errorf("labels %v, want %v (service, and no level)", e.labels, want)
			}
			if md := metadataMap(t, e.metadata); !maps.Equal(md, tt.metadata) {
				t.Errorf("structured metadata %v, want %v", md, tt.metadata)
			}
			if !e.ts.IsZero() {
				t.Errorf("a line without a timestamp field got time %v; Alloy keeps the read time", e.ts)
			}
		})
	}
}
