package deploy

import (
	"encoding/json"
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
// botfleet's files use (json, timestamp, labels, label_drop,
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
