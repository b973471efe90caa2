package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests in this package check deployment files with the real tools. A missing
// tool fails the test (it does not skip): CI must have them, and the failure
// names the Debian package that provides each.
const (
	promtoolPackage      = "prometheus"
	dockerComposePackage = "docker-compose"
)

// toolTimeout bounds every external command; promtool and docker-compose
// answer in well under a second, go build in under a minute.
const toolTimeout = 3 * time.Minute

// requireTool returns the path of a program, or fails the test naming the
// Debian package to install.
func requireTool(t *testing.T, name, debPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: install the Debian package %s (apt-get install %s)", name, debPackage, debPackage)
	}
	return path
}

// result is what a finished command printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// runTool runs a command in dir with env (nil: the test's environment) and
// returns its output and exit code; only a failure to start it fails the test.
func runTool(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return result{stdout.String(), stderr.String(), exit.ExitCode()}
	case err != nil:
		t.Fatalf("run %s %s: %v", name, strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), 0}
}

// mustRun is runTool for commands that must succeed.
func mustRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	r := runTool(t, dir, env, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// deployDir is this package's directory, where the deployment files live.
func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// repoRoot is the module root, one level up.
func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(deployDir(t))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeYAML decodes a YAML document into v. The module has no YAML library,
// so it asks the YAML parser docker-compose itself runs on: docker-compose
// (the Debian package) is a Python program that depends on PyYAML, and its
// first line names its interpreter. The document goes through JSON, so v is
// filled as encoding/json would fill it.
func decodeYAML(t *testing.T, doc []byte, v any) {
	t.Helper()
	python := composePython(t)
	const script = `import json, sys, yaml
json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=str)`
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", script)
	cmd.Stdin = bytes.NewReader(doc)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("YAML to JSON with %s (PyYAML, a dependency of the Debian package %s): %v\n%s",
			python, dockerComposePackage, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		t.Fatalf("decode JSON of YAML: %v", err)
	}
}

// decodeYAMLFile is decodeYAML on a file.
func decodeYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	decodeYAML(t, readFile(t, path), v)
}

// composePython returns the interpreter named on docker-compose's #! line.
func composePython(t *testing.T) string {
	t.Helper()
	compose := requireTool(t, "docker-compose", dockerComposePackage)
	f, err := os.Open(compose)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(first, "#!"))
	if !strings.HasPrefix(first, "#!") || len(fields) == 0 {
		t.Fatalf("%s is not the Python docker-compose of the Debian package %s (no #! line): install that package", compose, dockerComposePackage)
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		return fields[1]
	}
	return fields[0]
}

// copyDir copies the regular files under src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}
