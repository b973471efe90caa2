package deploy

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// lokiStored is what Loki stores with each line: its stream labels, and
// its structured metadata by where the metadata comes from.
type lokiStored struct {
	labels                    []string
	record, docker, fileNames []string // metadata of both Alloy files, config.alloy's only, files.alloy's only
}

// lokiStoresFromConfig works out what Loki stores from the two Alloy files
// and Loki's config: the labels and metadata Alloy sends, and, unless the
// config turns them off, what Loki 3 adds of its own by default: a
// service_name label on every stream and detected_level metadata.
func lokiStoresFromConfig(t *testing.T) lokiStored {
	t.Helper()
	fields := func(name string) (labels, metadata []string) {
		proc := loadAlloy(t, name).ComponentsNamed("loki.process")[0]
		labels = slices.Sorted(maps.Keys(proc.Block("stage.labels")[0].Attrs["values"].Object))
		metadata = slices.Sorted(maps.Keys(proc.Block("stage.structured_metadata")[0].Attrs["values"].Object))
		return labels, metadata
	}
	labels, docker := fields("config.alloy")
	fileLabels, files := fields("files.alloy")
	if !slices.Equal(labels, fileLabels) {
		t.Errorf("config.alloy sets labels %v, files.alloy %v: the dashboard needs the same", labels, fileLabels)
	}
	var s lokiStored
	s.labels = labels
	for _, m := range docker {
		if slices.Contains(files, m) {
			s.record = append(s.record, m)
		} else {
			s.docker = append(s.docker, m)
		}
	}
	for _, m := range files {
		if !slices.Contains(docker, m) {
			s.fileNames = append(s.fileNames, m)
		}
	}

	var cfg struct {
		Limits struct {
			DiscoverServiceName *[]string `json:"discover_service_name"`
			DiscoverLogLevels   *bool     `json:"discover_log_levels"`
		} `json:"limits_config"`
	}
	decodeYAMLFile(t, filepath.Join(deployDir(t), "loki", "config.yaml"), &cfg)
	if l := cfg.Limits.DiscoverServiceName; l == nil || len(*l) > 0 {
		s.labels = slices.Sorted(slices.Values(append(s.labels, "service_name")))
	}
	if l := cfg.Limits.DiscoverLogLevels; l == nil || *l {
		s.record = append(s.record, "detected_level")
	}
	slices.Sort(s.record)
	return s
}

var backticked = regexp.MustCompile("`([a-z_]+)`")

// lokiStoresFromDocs reads the table of docs/deploy.md's "Logs in Loki":
// each row names what Loki stores, in backticks.
func lokiStoresFromDocs(t *testing.T) lokiStored {
	t.Helper()
	doc := string(readFile(t, filepath.Join(repoRoot(t), "docs", "deploy.md")))
	_, section, ok := strings.Cut(doc, "\n## Logs in Loki\n")
	if !ok {
		t.Fatal(`docs/deploy.md has no section "## Logs in Loki"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var s lokiStored
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || strings.HasPrefix(cells[1], "---") {
			continue
		}
		var names []string
		for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
			names = append(names, m[1])
		}
		slices.Sort(names)
		kind := strings.TrimSpace(cells[1])
		switch {
		case kind == "stream labels":
			s.labels = names
		case strings.Contains(kind, "config.alloy"):
			s.docker = names
		case strings.Contains(kind, "files.alloy"):
			s.fileNames = names
		case strings.HasPrefix(kind, "structured metadata"):
			s.record = names
		default:
			continue
		}
		rows++
	}
	if rows != 4 {
		t.Fatalf("docs/deploy.md, Logs in Loki: found %d of the table's 4 rows (stream labels; structured metadata from the record, from Docker, from the file)", rows)
	}
	return s
}

// TestLokiStoresWhatDocsSay: docs/deploy.md's table of labels and metadata
// is what Loki stores, Loki's own additions included, and those additions
// are off, so that Loki stores the four labels the dashboard queries.
func TestLokiStoresWhatDocsSay(t *testing.T) {
	stored, docs := lokiStoresFromConfig(t), lokiStoresFromDocs(t)
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"stream labels", docs.labels, stored.labels},
		{"structured metadata from the record", docs.record, stored.record},
		{"structured metadata from Docker", docs.docker, stored.docker},
		{"structured metadata from the file", docs.fileNames, stored.fileNames},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("docs/deploy.md lists %s %v, Loki stores %v", c.what, c.got, c.want)
		}
	}
	if want := alloyLabels; !slices.Equal(stored.labels, want) {
		t.Errorf("Loki stores labels %v, want Alloy's %v: turn off discover_service_name in loki/config.yaml", stored.labels, want)
	}
	if slices.Contains(stored.record, "detected_level") {
		t.Error("Loki adds detected_level metadata: Alloy sets level; turn off discover_log_levels in loki/config.yaml")
	}
}
