package archtest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/botfleet/botfleet/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// listPackages runs go list over the module's non-test code.
func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "../../...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
	}
	return pkgs
}

// documentedGraph reads the "Package graph" table of docs/architecture.md:
// | `package` | `dep`, `dep` |
func documentedGraph(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	graph := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## Package graph"):
			in = true
		case in && strings.HasPrefix(line, "## "):
			in = false
		case in && strings.HasPrefix(line, "| `"):
			cells := strings.Split(line, "|")
			name := strings.Trim(strings.TrimSpace(cells[1]), "`")
			var deps []string
			for _, d := range strings.Split(cells[2], ",") {
				if d = strings.Trim(strings.TrimSpace(d), "`"); d != "" && d != "—" {
					deps = append(deps, d)
				}
			}
			slices.Sort(deps)
			graph[name] = deps
		}
	}
	if len(graph) == 0 {
		t.Fatal(`docs/architecture.md has no "## Package graph" table`)
	}
	return graph
}

// TestArchitectureGraphMatchesGoList: every package of the module and the
// module packages it imports are what docs/architecture.md says.
func TestArchitectureGraphMatchesGoList(t *testing.T) {
	pkgs := listPackages(t)
	doc := documentedGraph(t)
	for name, p := range pkgs {
		if strings.HasPrefix(name, "internal/archtest") {
			continue
		}
		var deps []string
		for _, imp := range p.Imports {
			if d, ok := strings.CutPrefix(imp, module); ok {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		want, ok := doc[name]
		if !ok {
			t.Errorf("package %s is missing from the graph in docs/architecture.md (it imports %v)", name, deps)
			continue
		}
		if !slices.Equal(deps, want) {
			t.Errorf("docs/architecture.md says %s imports %v; go list says %v", name, want, deps)
		}
	}
	for name := range doc {
		if _, ok := pkgs[name]; !ok {
			t.Errorf("docs/architecture.md names %s, which go list does not know", name)
		}
	}
}

// TestHeartbeatIsALeaf: the wire format's package pulls in no HTTP
// server, metrics or process sampling code, so a reader of the fleet (or
// a tool) can use it alone.
func TestHeartbeatIsALeaf(t *testing.T) {
	p := listPackages(t)["heartbeat"]
	for _, d := range p.Deps {
		for _, banned := range []string{"prometheus", "gopsutil", module + "monitoring", "net/http"} {
			if strings.Contains(d, banned) {
				t.Errorf("heartbeat depends on %s (through %s)", banned, d)
			}
		}
	}
}
