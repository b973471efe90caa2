package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	cmd, args string
	line      int
}

// dockerStage is a FROM and the instructions after it.
type dockerStage struct {
	image, name string
	body        []dockerInstruction
}

// parseDockerfile splits deploy/Dockerfile into stages.
func parseDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	var (
		stages  []dockerStage
		pending strings.Builder
		start   int
	)
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(deployDir(t), "Dockerfile"))))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		cmd, args, _ := strings.Cut(pending.String(), " ")
		pending.Reset()
		ins := dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args), start}
		if ins.cmd == "FROM" {
			f := strings.Fields(ins.args)
			s := dockerStage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile line %d: %s before FROM", start, ins.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, ins)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a small final one", len(stages))
	}
	return stages
}

// shellWords splits a RUN command as sh would for the simple commands a
// Dockerfile build line uses: words, "double" and 'single' quotes.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("&|;<>$`", c):
			t.Fatalf("the go build line %q uses shell syntax (%c) this test does not run; keep it one simple command", s, c)
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unclosed quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

var envAssign = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// goBuildCommand finds the build stage's RUN ... go build and returns its
// environment assignments and argv.
func goBuildCommand(t *testing.T, stages []dockerStage) (dockerStage, []string, []string) {
	t.Helper()
	for _, s := range stages[:len(stages)-1] {
		for _, ins := range s.body {
			if ins.cmd != "RUN" || !strings.Contains(ins.args, "go build") {
				continue
			}
			words := shellWords(t, ins.args)
			for len(words) > 0 && strings.HasPrefix(words[0], "--") { // --mount=type=cache,...
				words = words[1:]
			}
			var env []string
			for len(words) > 0 && envAssign.MatchString(words[0]) {
				env, words = append(env, words[0]), words[1:]
			}
			return s, env, words
		}
	}
	t.Fatal("no RUN ... go build in the Dockerfile's build stages")
	return dockerStage{}, nil, nil
}

// TestDockerfileGoBuild runs the Dockerfile's own go build command, output
// redirected to a temporary file, to show the image builds the binary the
// tests use: a static executable that runs.
func TestDockerfileGoBuild(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t)
	stage, env, argv := goBuildCommand(t, stages)

	// The builder's Go is the module's: golang:<major.minor of go.mod>.
	gomod := string(readFile(t, filepath.Join(repoRoot(t), "go.mod")))
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + m[1]; stage.image != want && !strings.HasPrefix(stage.image, want+"-") && !strings.HasPrefix(stage.image, want+".") {
		t.Errorf("build stage FROM %s, want %s (go.mod says go %s)", stage.image, want, m[1])
	}

	want := []string{"CGO_ENABLED=0"}
	if !slices.Equal(env, want) {
		t.Errorf("go build environment %v, want %v (a static binary for a distroless image)", env, want)
	}
	if len(argv) < 2 || argv[0] != "go" || argv[1] != "build" {
		t.Fatalf("build command %v is not go build", argv)
	}
	out := -1
	for i, a := range argv {
		if a == "-o" && i+1 < len(argv) {
			out = i + 1
		}
	}
	if out < 0 || argv[len(argv)-1] != "./cmd/botfleet" {
		t.Fatalf("build command %v: want -o <file> and ./cmd/botfleet", argv)
	}
	bin := filepath.Join(t.TempDir(), "botfleet")
	if final := stages[len(stages)-1]; !copiesFrom(final, stage.name, argv[out]) {
		t.Errorf("final stage does not COPY --from=%s %s", stage.name, argv[out])
	}
	argv[out] = bin

	buildEnv := append(os.Environ(), env...)
	mustRun(t, repoRoot(t), buildEnv, argv[0], argv[1:]...)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("built file is not an ELF executable: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a dynamic loader (PT_INTERP): it is not static and would not run on distroless/static")
		}
	}
	if v := mustRun(t, t.TempDir(), nil, bin, "version"); !strings.Contains(v, "botfleet") {
		t.Errorf("botfleet version printed %q", v)
	}
	t.Run("healthcheck", func(t *testing.T) { checkHealthcheckCommand(t, bin) })
}

// copiesFrom reports whether the stage copies path from the named stage.
func copiesFrom(s dockerStage, from, path string) bool {
	for _, ins := range s.body {
		if ins.cmd == "COPY" && strings.Contains(ins.args, "--from="+from) && strings.Contains(ins.args, " "+path+" ") {
			return true
		}
	}
	return false
}

// checkHealthcheckCommand runs `botfleet healthcheck`, the image's
// HEALTHCHECK, against a process that answers /livez and against a port
// where nothing listens.
func checkHealthcheckCommand(t *testing.T, bin string) {
	t.Helper()
	probe := runTool(t, t.TempDir(), []string{"METRICS_PORT=1"}, bin, "healthcheck")
	if strings.Contains(probe.stderr+probe.stdout, `unknown command "healthcheck"`) {
		t.Skip("botfleet has no healthcheck command yet: the Dockerfile's HEALTHCHECK and the compose healthchecks need it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/livez" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})}
	go func() { _ = srv.Serve(ln) }()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if r := runTool(t, t.TempDir(), []string{"METRICS_PORT=" + port}, bin, "healthcheck"); r.code != 0 {
		t.Errorf("healthcheck against a live /livez: exit %d, want 0\n%s", r.code, r.stderr)
	}
	srv.Close()
	if r := runTool(t, t.TempDir(), []string{"METRICS_PORT=" + port}, bin, "healthcheck"); r.code != 1 {
		t.Errorf("healthcheck with nothing listening: exit %d, want 1\n%s", r.code, r.stderr)
	}
}

// TestDockerfileFinalStage checks the image's run-time side.
func TestDockerfileFinalStage(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	got := map[string]string{}
	for _, ins := range final.body {
		got[ins.cmd] = ins.args
	}
	if strings.HasPrefix(final.image, "golang") || strings.Contains(final.image, "ubuntu") || strings.Contains(final.image, "debian:") {
		t.Errorf("final image %s is not a small one", final.image)
	}
	user := strings.SplitN(got["USER"], ":", 2)[0]
	if user == "" || user == "root" || user == "0" {
		t.Errorf("final stage runs as %q; want a non-root USER", got["USER"])
	}
	if hc := got["HEALTHCHECK"]; !strings.Contains(hc, `CMD ["/usr/local/bin/botfleet", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q, want exec form CMD [\"/usr/local/bin/botfleet\", \"healthcheck\"]", hc)
	}
	if got["ENTRYPOINT"] != `["/usr/local/bin/botfleet"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/usr/local/bin/botfleet\"]", got["ENTRYPOINT"])
	}
	for _, want := range []string{"LOG_DIR=/app/logs", "METRICS_PORT=9200"} {
		if !strings.Contains(got["ENV"], want) {
			t.Errorf("ENV %q does not set %s", got["ENV"], want)
		}
	}
}
