package deploy

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// credentialsFile is where every scrape and discovery of prometheus.yml
// reads the bearer token, relative to the file; docker-compose.yml writes it.
const credentialsFile = "secrets/metrics_auth_token"

type promConfig struct {
	RuleFiles []string `json:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []staticConfig `json:"static_configs"`
		} `json:"alertmanagers"`
	} `json:"alerting"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type staticConfig struct {
	Targets []string `json:"targets"`
}

type authorization struct {
	Type            string `json:"type"`
	CredentialsFile string `json:"credentials_file"`
}

type scrapeConfig struct {
	JobName        string         `json:"job_name"`
	ScrapeInterval string         `json:"scrape_interval"`
	MetricsPath    string         `json:"metrics_path"`
	HonorLabels    bool           `json:"honor_labels"`
	Authorization  *authorization `json:"authorization"`
	StaticConfigs  []staticConfig `json:"static_configs"`
	HTTPSDConfigs  []struct {
		URL           string         `json:"url"`
		Authorization *authorization `json:"authorization"`
	} `json:"http_sd_configs"`
	DockerSDConfigs []struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	} `json:"docker_sd_configs"`
	RelabelConfigs []relabelRule `json:"relabel_configs"`
}

func loadPromConfig(t *testing.T) promConfig {
	t.Helper()
	var cfg promConfig
	decodeYAMLFile(t, filepath.Join(deployDir(t), "prometheus", "prometheus.yml"), &cfg)
	return cfg
}

func (c promConfig) job(t *testing.T, name string) scrapeConfig {
	t.Helper()
	for _, sc := range c.ScrapeConfigs {
		if sc.JobName == name {
			return sc
		}
	}
	t.Fatalf("prometheus.yml has no job %q", name)
	return scrapeConfig{}
}

// TestPromtoolCheckConfig runs promtool check config on a copy of
// deploy/prometheus with the token file the compose stack writes at start-up
// (promtool checks that credentials files exist, and checks the rule files).
func TestPromtoolCheckConfig(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool", promtoolPackage)
	dir := t.TempDir()
	copyDir(t, filepath.Join(deployDir(t), "prometheus"), dir)
	token := filepath.Join(dir, credentialsFile)
	if err := os.MkdirAll(filepath.Dir(token), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("test-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, dir, nil, promtool, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check config did not report SUCCESS:\n%s", out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool", promtoolPackage)
	mustRun(t, filepath.Join(deployDir(t), "prometheus", "rules"), nil, promtool, "check", "rules", "botfleet.yml")
}

// TestPromtoolTestRules runs the alerts' unit tests.
func TestPromtoolTestRules(t *testing.T) {
	t.Parallel()
	promtool := requireTool(t, "promtool", promtoolPackage)
	out := mustRun(t, filepath.Join(deployDir(t), "prometheus", "rules"), nil, promtool, "test", "rules", "botfleet_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

func TestPrometheusJobs(t *testing.T) {
	cfg := loadPromConfig(t)

	if got := slices.Collect(func(yield func(string) bool) {
		for _, sc := range cfg.ScrapeConfigs {
			if !yield(sc.JobName) {
				return
			}
		}
	}); !slices.Equal(got, []string{"bot-main", "bot-workers", "docker"}) {
		t.Errorf("jobs = %v, want [bot-main bot-workers docker]", got)
	}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.Authorization == nil || sc.Authorization.CredentialsFile != credentialsFile {
			t.Errorf("job %s: scrapes without the bearer token file %s; botfleet requires it when METRICS_AUTH_TOKEN is set", sc.JobName, credentialsFile)
		}
	}

	botMain := cfg.job(t, "bot-main")
	if len(botMain.StaticConfigs) != 1 || !slices.Equal(botMain.StaticConfigs[0].Targets, []string{"bot:9200"}) {
		t.Errorf("bot-main targets = %+v, want [bot:9200]", botMain.StaticConfigs)
	}
	if botMain.ScrapeInterval != "30s" {
		t.Errorf("bot-main scrape_interval = %q, want the design's 30s", botMain.ScrapeInterval)
	}

	workers := cfg.job(t, "bot-workers")
	if workers.ScrapeInterval != "15s" || workers.MetricsPath != "/metrics" {
		t.Errorf("bot-workers scrape_interval, metrics_path = %q, %q; want the design's 15s, /metrics", workers.ScrapeInterval, workers.MetricsPath)
	}
	if len(workers.HTTPSDConfigs) != 1 || workers.HTTPSDConfigs[0].URL != "http://bot:9200/api/fleet/targets" {
		t.Fatalf("bot-workers http_sd_configs = %+v, want the bot's /api/fleet/targets", workers.HTTPSDConfigs)
	}
	if a := workers.HTTPSDConfigs[0].Authorization; a == nil || a.CredentialsFile != credentialsFile {
		t.Errorf("bot-workers discovery does not send the token; /api/fleet/* requires it")
	}
	if !workers.HonorLabels {
		t.Errorf("bot-workers: honor_labels is off, so every worker series would get exported_worker_id etc. copies of its own labels")
	}
	if len(workers.StaticConfigs)+len(workers.DockerSDConfigs) != 0 {
		t.Errorf("bot-workers has a second discovery besides http_sd: a worker would be scraped twice in one job")
	}

	if len(cfg.RuleFiles) == 0 {
		t.Error("prometheus.yml loads no rule files")
	}
	for _, f := range cfg.RuleFiles {
		if strings.HasSuffix(f, "_test.yml") || strings.ContainsAny(f, "*?[") {
			t.Errorf("rule_files entry %q would load the promtool test file as rules", f)
		}
	}
	if len(cfg.Alerting.Alertmanagers) == 0 || !slices.Contains(cfg.Alerting.Alertmanagers[0].StaticConfigs[0].Targets, "alertmanager:9093") {
		t.Errorf("alerting does not point at alertmanager:9093: %+v", cfg.Alerting)
	}
}

// TestDockerJobScrapesEachContainerOnce runs the docker job's relabeling
// over the targets docker_sd_configs makes on the compose host: bot and
// worker belong to their own jobs, and a labelled container seen on two
// networks and two ports is scraped once, on 9200.
func TestDockerJobScrapesEachContainerOnce(t *testing.T) {
	job := loadPromConfig(t).job(t, "docker")
	if len(job.DockerSDConfigs) != 1 {
		t.Fatalf("docker job: %d docker_sd_configs, want 1", len(job.DockerSDConfigs))
	}
	container := func(service, name, port, ip string, scrape bool) map[string]string {
		l := map[string]string{
			"__address__":                  ip + ":" + port,
			"__meta_docker_container_name": "/" + name,
			"__meta_docker_container_label_com_docker_compose_service": service,
			"__meta_docker_network_ip":                                 ip,
		}
		if port != "" {
			l["__meta_docker_port_private"] = port
		}
		if scrape {
			l["__meta_docker_container_label_prometheus_io_scrape"] = "true"
			l["__meta_docker_container_label_prometheus_io_port"] = "9200"
			l["__meta_docker_container_label_prometheus_io_path"] = "/metrics"
		}
		return l
	}
	discovered := []map[string]string{
		container("worker", "botfleet-worker-1", "9200", "172.18.0.5", true),
		container("worker", "botfleet-worker-2", "9200", "172.18.0.6", true),
		container("bot", "botfleet-bot-1", "9200", "172.18.0.4", true),
		container("discord_bot", "botfleet-discord_bot-1", "9200", "172.18.0.7", true),
		container("discord_bot", "botfleet-discord_bot-1", "9200", "172.19.0.3", true), // second network
		container("discord_bot", "botfleet-discord_bot-1", "8080", "172.18.0.7", true), // second exposed port
		container("redis", "botfleet-redis-1", "6379", "172.18.0.2", false),
	}
	targets := map[string]map[string]string{}
	for _, d := range discovered {
		labels, kept := applyRelabel(t, job.RelabelConfigs, d)
		if !kept {
			continue
		}
		final := withoutInternal(labels, "__address__", "__metrics_path__")
		targets[strings.Join(slices.Sorted(maps.Keys(final)), ",")+"|"+final["__address__"]+final["__metrics_path__"]] = final
	}
	if len(targets) != 1 {
		t.Fatalf("docker job scrapes %d distinct targets, want 1 (discord_bot once): %v", len(targets), targets)
	}
	for _, got := range targets {
		if got["__address__"] != "botfleet-discord_bot-1:9200" || got["__metrics_path__"] != "/metrics" {
			t.Errorf("docker job target = %v, want botfleet-discord_bot-1:9200/metrics", got)
		}
	}
}

// ruleFile is deploy/prometheus/rules/botfleet.yml.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert         string            `json:"alert"`
			Expr          string            `json:"expr"`
			For           string            `json:"for"`
			KeepFiringFor string            `json:"keep_firing_for"`
			Labels        map[string]string `json:"labels"`
			Annotations   map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// ruleTests is deploy/prometheus/rules/botfleet_test.yml.
type ruleTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func TestAlertRules(t *testing.T) {
	var rules ruleFile
	decodeYAMLFile(t, filepath.Join(deployDir(t), "prometheus", "rules", "botfleet.yml"), &rules)
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			exprs[r.Alert] = r.Expr
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" {
				t.Errorf("%s: severity %q, want critical or warning (alertmanager.yml routes on it)", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs both a summary and a description annotation", r.Alert)
			}
			checkMetricNames(t, r.Alert, r.Expr)
		}
	}
	want := []string{"DeadLettersGrowing", "HighJobErrorRate", "JobQueueBacklogNearLimit", "JobQueueLatencyHigh", "MetricsEndpointDown",
		"NoIdleWorkers", "WorkerDown", "WorkerHeartbeatStale", "WorkerMemoryHigh"}
	if got := slices.Sorted(maps.Keys(exprs)); !slices.Equal(got, want) {
		t.Errorf("alerts = %v, want %v", got, want)
	}
	const designErrorRate = "rate(worker_jobs_failed_total[5m]) / rate(worker_jobs_processed_total[5m])"
	if !strings.HasPrefix(exprs["HighJobErrorRate"], designErrorRate+" >") {
		t.Errorf("HighJobErrorRate = %q, want the design's %s over a threshold", exprs["HighJobErrorRate"], designErrorRate)
	}
	if exprs["WorkerHeartbeatStale"] != "fleet_workers_stale > 0" {
		t.Errorf("WorkerHeartbeatStale = %q, want fleet_workers_stale > 0", exprs["WorkerHeartbeatStale"])
	}
	if !strings.Contains(exprs["WorkerDown"], `up{job="bot-workers"} == 0`) {
		t.Errorf("WorkerDown = %q, want it on the bot-workers scrape", exprs["WorkerDown"])
	}

	// Every alert is unit-tested both ways.
	var tests ruleTests
	decodeYAMLFile(t, filepath.Join(deployDir(t), "prometheus", "rules", "botfleet_test.yml"), &tests)
	if !slices.Equal(tests.RuleFiles, []string{"botfleet.yml"}) {
		t.Errorf("botfleet_test.yml rule_files = %v, want [botfleet.yml]", tests.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for alert := range exprs {
		if !fires[alert] {
			t.Errorf("%s: no promtool test in which it fires", alert)
		}
		if !quiet[alert] {
			t.Errorf("%s: no promtool test in which it must stay quiet", alert)
		}
	}
}
