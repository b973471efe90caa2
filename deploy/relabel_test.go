package deploy

import (
	"regexp"
	"strings"
	"testing"
)

// relabelRule is one Prometheus relabel_configs entry, or one Alloy
// discovery.relabel rule block: the two share their semantics.
type relabelRule struct {
	SourceLabels []string `json:"source_labels"`
	Separator    *string  `json:"separator"`
	Regex        *string  `json:"regex"`
	TargetLabel  string   `json:"target_label"`
	Replacement  *string  `json:"replacement"`
	Action       string   `json:"action"`
}

// applyRelabel runs rules over a label set as Prometheus does for the
// replace, keep and drop actions, the only ones botfleet's files use; any
// other action fails the test so the simulation is extended before it is
// trusted. It returns the new label set and whether the target is kept.
func applyRelabel(t *testing.T, rules []relabelRule, in map[string]string) (map[string]string, bool) {
	t.Helper()
	labels := make(map[string]string, len(in))
	for k, v := range in {
		labels[k] = v
	}
	for i, r := range rules {
		sep, regex, repl, action := ";", "(.*)", "$1", "replace"
		if r.Separator != nil {
			sep = *r.Separator
		}
		if r.Regex != nil {
			regex = *r.Regex
		}
		if r.Replacement != nil {
			repl = *r.Replacement
		}
		if r.Action != "" {
			action = strings.ToLower(r.Action)
		}
		re, err := regexp.Compile("^(?:" + regex + ")$")
		if err != nil {
			t.Fatalf("rule %d: regex %q: %v", i, regex, err)
		}
		values := make([]string, len(r.SourceLabels))
		for j, name := range r.SourceLabels {
			values[j] = labels[name]
		}
		value := strings.Join(values, sep)
		switch action {
		case "keep":
			if !re.MatchString(value) {
				return labels, false
			}
		case "drop":
			if re.MatchString(value) {
				return labels, false
			}
		case "replace":
			m := re.FindStringSubmatchIndex(value)
			if m == nil {
				continue
			}
			res := string(re.ExpandString(nil, repl, value, m))
			if res == "" {
				delete(labels, r.TargetLabel)
			} else {
				labels[r.TargetLabel] = res
			}
		default:
			t.Fatalf("rule %d: the relabel simulation knows replace, keep and drop, not %q: extend applyRelabel", i, action)
		}
	}
	return labels, true
}

// withoutInternal drops the labels starting with "__", as Prometheus and
// Alloy do once relabeling is over, except those named in keep.
func withoutInternal(labels map[string]string, keep ...string) map[string]string {
	out := make(map[string]string)
	for k, v := range labels {
		if !strings.HasPrefix(k, "__") {
			out[k] = v
			continue
		}
		for _, kk := range keep {
			if k == kk {
				out[k] = v
			}
		}
	}
	return out
}

func TestApplyRelabel(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name     string
		rules    []relabelRule
		in, want map[string]string
		kept     bool
	}{
		{
			name:  "replace with default regex copies the value",
			rules: []relabelRule{{SourceLabels: []string{"a"}, TargetLabel: "b"}},
			in:    map[string]string{"a": "x"},
			want:  map[string]string{"a": "x", "b": "x"},
			kept:  true,
		},
		{
			name:  "replace of an empty value removes the target",
			rules: []relabelRule{{SourceLabels: []string{"missing"}, TargetLabel: "b"}},
			in:    map[string]string{"b": "old"},
			want:  map[string]string{},
			kept:  true,
		},
		{
			name:  "regex is anchored and captures",
			rules: []relabelRule{{SourceLabels: []string{"n"}, Regex: str("/?(.*)"), TargetLabel: "c"}},
			in:    map[string]string{"n": "/botfleet-worker-1"},
			want:  map[string]string{"n": "/botfleet-worker-1", "c": "botfleet-worker-1"},
			kept:  true,
		},
		{
			name:  "keep drops a non-matching target",
			rules: []relabelRule{{SourceLabels: []string{"s"}, Regex: str("bot|worker"), Action: "keep"}},
			in:    map[string]string{"s": "workers"},
			kept:  false,
		},
		{
			name:  "drop drops a matching target",
			rules: []relabelRule{{SourceLabels: []string{"s"}, Regex: str("bot|worker"), Action: "drop"}},
			in:    map[string]string{"s": "bot"},
			kept:  false,
		},
		{
			name:  "source labels join with the separator",
			rules: []relabelRule{{SourceLabels: []string{"h", "p"}, Separator: str(":"), TargetLabel: "__address__"}},
			in:    map[string]string{"h": "w1", "p": "9200"},
			want:  map[string]string{"h": "w1", "p": "9200", "__address__": "w1:9200"},
			kept:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kept := applyRelabel(t, tt.rules, tt.in)
			if kept != tt.kept {
				t.Fatalf("kept = %v, want %v", kept, tt.kept)
			}
			if !kept {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}
