package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// composeSecrets are the variables docker-compose.yml requires from .env.
var composeSecrets = []string{"GRAFANA_ADMIN_PASSWORD", "REDIS_PASSWORD", "METRICS_AUTH_TOKEN", "SUBMIT_TOKEN", "ADMIN_TOKEN"}

// composeService is one service of `docker-compose config`'s output. Ports
// and volumes stay untyped: docker-compose 1.x prints them as short strings,
// Compose 2 as mappings; portBindings and mounts read both.
type composeService struct {
	Image         string            `json:"image"`
	Build         any               `json:"build"`
	ContainerName string            `json:"container_name"`
	Hostname      string            `json:"hostname"`
	Command       any               `json:"command"`
	Entrypoint    any               `json:"entrypoint"`
	Environment   map[string]string `json:"environment"`
	Labels        map[string]string `json:"labels"`
	Ports         []any             `json:"ports"`
	Volumes       []any             `json:"volumes"`
	Restart       string            `json:"restart"`
	Healthcheck   *struct {
		Test    any  `json:"test"`
		Disable bool `json:"disable"`
	} `json:"healthcheck"`
}

type composeConfig struct {
	Services map[string]composeService `json:"services"`
}

// readEnvExample returns .env.example's assignments in order.
func readEnvExample(t *testing.T) [][2]string {
	t.Helper()
	var kv [][2]string
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(deployDir(t), ".env.example"))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf(".env.example: %q is not NAME=value", line)
		}
		kv = append(kv, [2]string{k, v})
	}
	return kv
}

// writeEnvFile writes a temporary .env from .env.example, leaving out the
// variables in omit.
func writeEnvFile(t *testing.T, omit ...string) string {
	t.Helper()
	var b strings.Builder
	for _, kv := range readEnvExample(t) {
		if !slices.Contains(omit, kv[0]) {
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// composeConfigRun runs `docker-compose config` with an env file and an
// environment of PATH alone, so no variable of the developer's shell (or a
// real deploy/.env) leaks into the result.
func composeConfigRun(t *testing.T, envFile string) result {
	t.Helper()
	compose := requireTool(t, "docker-compose", dockerComposePackage)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	return runTool(t, deployDir(t), env, compose, "--env-file", envFile, "-f", "docker-compose.yml", "config")
}

func loadCompose(t *testing.T) composeConfig {
	t.Helper()
	r := composeConfigRun(t, writeEnvFile(t))
	if r.code != 0 {
		t.Fatalf("docker-compose config rejects docker-compose.yml (exit %d):\n%s%s", r.code, r.stderr, r.stdout)
	}
	var cfg composeConfig
	decodeYAML(t, []byte(r.stdout), &cfg)
	return cfg
}

// mount is one volume, whichever syntax docker-compose printed.
type mount struct{ source, target string }

func (s composeService) mounts(t *testing.T) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("volume %q has no target", v)
			}
			out = append(out, mount{parts[0], parts[1]})
		case map[string]any:
			src, _ := v["source"].(string)
			dst, _ := v["target"].(string)
			out = append(out, mount{src, dst})
		}
	}
	return out
}

// mountTarget is where the host path (relative to deploy/) is mounted.
func (s composeService) mountTarget(t *testing.T, rel string) string {
	t.Helper()
	want := filepath.Join(deployDir(t), rel)
	for _, m := range s.mounts(t) {
		if m.source == want {
			return m.target
		}
	}
	return ""
}

// portBindings returns each published port as host_ip:published:target.
func (s composeService) portBindings() []string {
	var out []string
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			out = append(out, strings.TrimSuffix(p, "/tcp"))
		case map[string]any:
			out = append(out, fmt.Sprintf("%v:%v:%v", p["host_ip"], p["published"], p["target"]))
		}
	}
	return out
}

// words flattens a command or entrypoint, list or string.
func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, w := range v {
			out = append(out, fmt.Sprint(w))
		}
		return out
	}
	return nil
}

func TestComposeConfig(t *testing.T) {
	t.Parallel()
	cfg := loadCompose(t)
	want := []string{"alertmanager", "alloy", "bot", "grafana", "loki", "prometheus", "redis", "worker"}
	if got := slices.Sorted(maps.Keys(cfg.Services)); !slices.Equal(got, want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	for name, s := range cfg.Services {
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(words(s.Healthcheck.Test)) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
		if tag := s.Image[strings.LastIndex(s.Image, ":")+1:]; !strings.Contains(s.Image, ":") || tag == "latest" {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		for _, p := range s.portBindings() {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s is published beyond 127.0.0.1 with .env.example's settings", name, p)
			}
		}
	}
}

// TestComposeBotAndWorker checks the two botfleet services against the
// contract: environment, labels, logs volume, healthcheck, and a worker
// that `--scale` can multiply.
func TestComposeBotAndWorker(t *testing.T) {
	t.Parallel()
	cfg := loadCompose(t)
	env := map[string]string{}
	for _, kv := range readEnvExample(t) {
		env[kv[0]] = kv[1]
	}
	for _, name := range []string{"bot", "worker"} {
		s := cfg.Services[name]
		if s.Build == nil {
			t.Errorf("%s: no build section: `up --build` could not build deploy/Dockerfile", name)
		}
		if got := words(s.Command); !slices.Equal(got, []string{name}) {
			t.Errorf("%s: command %v, want [%s]", name, got, name)
		}
		wantEnv := map[string]string{
			"LOG_FORMAT":         "json",
			"LOG_DIR":            "/app/logs",
			"METRICS_PORT":       "9200",
			"METRICS_AUTH_TOKEN": env["METRICS_AUTH_TOKEN"],
			"REDIS_URL":          "redis://:" + env["REDIS_PASSWORD"] + "@redis:6379/0",
			"DEPLOYMENT_ENV":     env["DEPLOYMENT_ENV"],
			"REGION":             env["REGION"],
			"LOG_LEVEL":          env["LOG_LEVEL"],
			"LOG_TO_FILE":        env["LOG_TO_FILE"],
			"HEARTBEAT_INTERVAL": env["HEARTBEAT_INTERVAL"],
		}
		for k, v := range wantEnv {
			if got, ok := s.Environment[k]; !ok || got != v {
				t.Errorf("%s: environment %s = %q, want %q", name, k, got, v)
			}
		}
		for k, v := range map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9200", "prometheus.io/path": "/metrics"} {
			if s.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", name, k, s.Labels[k], v)
			}
		}
		if !slices.Contains(s.mounts(t), mount{"logs", "/app/logs"}) {
			t.Errorf("%s: volume logs is not mounted at /app/logs: %v", name, s.mounts(t))
		}
		if got := words(s.Healthcheck.Test); !slices.Equal(got, []string{"CMD", "/usr/local/bin/botfleet", "healthcheck"}) {
			t.Errorf("%s: healthcheck %v, want botfleet healthcheck", name, got)
		}
	}

	w := cfg.Services["worker"]
	if w.ContainerName != "" || w.Hostname != "" {
		t.Errorf("worker: container_name %q / hostname %q would make every replica the same", w.ContainerName, w.Hostname)
	}
	if len(w.Ports) != 0 {
		t.Errorf("worker: publishes ports %v; a second replica could not bind them", w.Ports)
	}
	if id, ok := w.Environment["WORKER_ID"]; ok {
		t.Errorf("worker: WORKER_ID=%q is fixed; replicas must derive their ids from their hostnames", id)
	}
}

// TestComposeMountsMatchConfigs checks that each service reads the file of
// this directory that the tests check, at the path its command names.
func TestComposeMountsMatchConfigs(t *testing.T) {
	t.Parallel()
	cfg := loadCompose(t)
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	decodeYAMLFile(t, filepath.Join(deployDir(t), "grafana", "provisioning", "dashboards", "dashboards.yaml"), &providers)
	if len(providers.Providers) != 1 {
		t.Fatalf("dashboards.yaml: %d providers, want 1", len(providers.Providers))
	}
	tests := []struct {
		service, file, target string
		inCommand             string // a command word that must name the target
	}{
		{"prometheus", "prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml", "--config.file=/etc/prometheus/prometheus.yml"},
		{"prometheus", "prometheus/rules", "/etc/prometheus/rules", ""},
		{"alertmanager", "alertmanager/alertmanager.yml", "/etc/alertmanager/alertmanager.yml", "--config.file=/etc/alertmanager/alertmanager.yml"},
		{"loki", "loki/config.yaml", "/etc/loki/config.yaml", "-config.file=/etc/loki/config.yaml"},
		{"alloy", "alloy/config.alloy", "/etc/alloy/config.alloy", "/etc/alloy/config.alloy"},
		{"grafana", "grafana/provisioning", "/etc/grafana/provisioning", ""},
		{"grafana", "grafana/dashboards", providers.Providers[0].Options.Path, ""},
	}
	for _, tt := range tests {
		s := cfg.Services[tt.service]
		if got := s.mountTarget(t, tt.file); got != tt.target {
			t.Errorf("%s: deploy/%s is mounted at %q, want %q", tt.service, tt.file, got, tt.target)
		}
		if tt.inCommand != "" && !slices.Contains(words(s.Command), tt.inCommand) {
			t.Errorf("%s: command %v does not contain %s", tt.service, words(s.Command), tt.inCommand)
		}
	}

	// Prometheus's scrapes read the token from credentialsFile, relative to
	// /etc/prometheus; the entrypoint must write exactly that file.
	script := strings.Join(words(cfg.Services["prometheus"].Entrypoint), " ")
	if !strings.Contains(script, "/etc/prometheus/"+credentialsFile) {
		t.Errorf("prometheus entrypoint does not write /etc/prometheus/%s: %s", credentialsFile, script)
	}
	if !strings.Contains(script, "exec /bin/prometheus") {
		t.Errorf("prometheus entrypoint does not exec Prometheus: %s", script)
	}

	g := cfg.Services["grafana"]
	password := ""
	for _, kv := range readEnvExample(t) {
		if kv[0] == "GRAFANA_ADMIN_PASSWORD" {
			password = kv[1]
		}
	}
	if got := g.Environment["GF_SECURITY_ADMIN_PASSWORD"]; got != password || got == "admin" {
		t.Errorf("grafana: admin password %q, want GRAFANA_ADMIN_PASSWORD from .env (%q)", got, password)
	}
}

// TestComposeRequiresSecrets: without any one secret in .env, compose stops
// with a message that names it, instead of starting with a default.
func TestComposeRequiresSecrets(t *testing.T) {
	t.Parallel()
	for _, secret := range composeSecrets {
		t.Run(secret, func(t *testing.T) {
			t.Parallel()
			r := composeConfigRun(t, writeEnvFile(t, secret))
			if r.code == 0 {
				t.Fatalf("docker-compose config succeeds without %s; it must be required", secret)
			}
			if !strings.Contains(r.stderr+r.stdout, secret) {
				t.Errorf("the error does not name %s:\n%s", secret, r.stderr)
			}
		})
	}
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`)

// TestEnvExample: every variable the compose file reads is in .env.example,
// with a value (docker-compose config above runs on exactly those values),
// and deploy/.env itself is never committed.
func TestEnvExample(t *testing.T) {
	example := map[string]string{}
	for _, kv := range readEnvExample(t) {
		example[kv[0]] = kv[1]
	}
	for _, m := range composeVar.FindAllStringSubmatch(string(readFile(t, filepath.Join(deployDir(t), "docker-compose.yml"))), -1) {
		if v, ok := example[m[1]]; !ok || v == "" {
			t.Errorf(".env.example does not set %s, which docker-compose.yml reads", m[1])
		}
	}
	for _, secret := range composeSecrets {
		if !strings.HasPrefix(example[secret], "replace-me") {
			t.Errorf(".env.example: %s=%q looks like a real secret; use a replace-me placeholder", secret, example[secret])
		}
	}
	ignored := false
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(deployDir(t), ".gitignore"))))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line == ".env" || line == "/.env" {
			ignored = true
		}
	}
	if !ignored {
		t.Error("deploy/.gitignore does not ignore .env")
	}
}
