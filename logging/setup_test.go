package logging

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(Config) bool
		wantErr []string // substrings the error must hold
	}{
		{name: "defaults", env: nil, want: func(c Config) bool {
			return c.Level == slog.LevelInfo && c.Format == "json" && !c.ToFile && c.Dir == "logs" &&
				c.MaxSizeMB == 100 && c.MaxBackups == 10 && c.MaxAgeDays == 30
		}},
		{name: "case-insensitive level and WARN", env: map[string]string{"LOG_LEVEL": "warn"}, want: func(c Config) bool { return c.Level == slog.LevelWarn }},
		{name: "critical", env: map[string]string{"LOG_LEVEL": "Critical"}, want: func(c Config) bool { return c.Level == LevelCritical }},
		{name: "all set", env: map[string]string{"LOG_FORMAT": "PRETTY", "LOG_TO_FILE": "true", "LOG_DIR": "/var/log/bf",
			"LOG_MAX_SIZE_MB": "5", "LOG_MAX_BACKUPS": "3", "LOG_MAX_AGE_DAYS": "7", "LOG_REDACT_KEYS": " ssn, card_number ,"},
			want: func(c Config) bool {
				return c.Format == "pretty" && c.ToFile && c.Dir == "/var/log/bf" && c.MaxSizeMB == 5 && c.MaxBackups == 3 &&
					c.MaxAgeDays == 7 && strings.Join(c.RedactKeys, "|") == "ssn|card_number"
			}},
		{name: "bad level", env: map[string]string{"LOG_LEVEL": "LOUD"},
			wantErr: []string{`LOG_LEVEL="LOUD": want one of DEBUG, INFO, WARNING, ERROR, CRITICAL`}},
		{name: "every bad value at once", env: map[string]string{"LOG_FORMAT": "xml", "LOG_TO_FILE": "maybe", "LOG_MAX_SIZE_MB": "0", "LOG_MAX_BACKUPS": "ten"},
			wantErr: []string{`LOG_FORMAT="xml": want json or pretty`, `LOG_TO_FILE="maybe"`, `LOG_MAX_SIZE_MB="0"`, `LOG_MAX_BACKUPS="ten"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(envOf(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

// setupIn runs Setup with files on under a temp dir and returns the dir.
func setupIn(t *testing.T, opts Options, format string) (string, *bytes.Buffer, func() error) {
	t.Helper()
	isolate(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.ToFile, cfg.Dir, cfg.Format = true, dir, format
	var console bytes.Buffer
	opts.Config, opts.Stdout = &cfg, &console
	opts.Deployment = &Deployment{Hostname: "bot-server-01", Env: "staging"}
	_, closeLogs, err := Setup(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLogs() })
	return dir, &console, closeLogs
}

func TestSetupFileLayout(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		format string
		files  []string
	}{
		{"bot", Options{Service: "bot"}, "json", []string{"bot/bot.jsonl"}},
		{"bot pretty", Options{Service: "bot"}, "pretty", []string{"bot/bot.jsonl", "bot/bot-dev.log"}},
		{"worker", Options{Service: "worker", WorkerID: "worker-2"}, "json", []string{"workers/worker-2.jsonl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, console, closeLogs := setupIn(t, tt.opts, tt.format)
			slog.Info("hello from setup", "password", "hunter2")
			if err := closeLogs(); err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.files {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatalf("missing %s: %v", f, err)
				}
				if !bytes.Contains(b, []byte("hello from setup")) || bytes.Contains(b, []byte("hunter2")) {
					t.Errorf("%s: %q", f, b)
				}
				if strings.HasSuffix(f, ".jsonl") {
					m := parseLines(t, b)[0]
					if m["service"] != tt.opts.Service || m["hostname"] != "bot-server-01" || m["deployment_env"] != "staging" {
						t.Errorf("%s lacks the bound context: %v", f, m)
					}
					if tt.opts.WorkerID != "" && m["worker_id"] != tt.opts.WorkerID {
						t.Errorf("worker_id = %v", m["worker_id"])
					}
				}
			}
			if !strings.Contains(console.String(), "hello from setup") {
				t.Errorf("console got %q", console.String())
			}
		})
	}
}

func TestSetupUnwritableDir(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.ToFile, cfg.Dir = true, filepath.Join(file, "logs")
	_, _, err := Setup(Options{Config: &cfg, Stdout: &bytes.Buffer{}, Deployment: &Deployment{}})
	if err == nil || !strings.Contains(err.Error(), "LOG_DIR") || !strings.Contains(err.Error(), file) {
		t.Fatalf("got %v, want an error naming LOG_DIR and the path", err)
	}
}

func TestSession(t *testing.T) {
	dir, _, _ := setupIn(t, Options{Service: "worker", WorkerID: "worker-1"}, "json")
	logger, closeSession, err := Session("browser-session")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("page opened", "url", "https://example.com")
	if err := closeSession(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "workers", "browser-session.log"))
	if err != nil {
		t.Fatal(err)
	}
	m := parseLines(t, b)[0]
	if m["session"] != "browser-session" || m["worker_id"] != "worker-1" {
		t.Errorf("session record: %v", m)
	}
	if _, _, err := Session("../escape"); err == nil {
		t.Error("a session name with a slash was accepted")
	}
}

func TestPrettyHandler(t *testing.T) {
	isolate(t)
	t.Setenv("NO_COLOR", "")
	Bind("service", "bot")
	var buf bytes.Buffer
	logger := slog.New(NewPrettyHandler(&buf, &HandlerOptions{Level: slog.LevelDebug}))
	logger.With("worker_id", "worker-1").WithGroup("g").Info("line one\nforged \x1b[2J", "token", "abc", "v", "a\tb")
	logger.Log(t.Context(), LevelCritical, "down")
	out := buf.String()
	if strings.Count(out, "\n") != 2 {
		t.Fatalf("want 2 lines, got %q", out)
	}
	for _, want := range []string{`line one\nforged \x1b[2J`, "service=bot", "worker_id=worker-1", "g.token=" + Redacted, `g.v=a\tb`, "CRT"} {
		if !strings.Contains(out, want) {
			t.Errorf("pretty output lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("escape code reached the output of a non-terminal: %q", out)
	}
	var colored bytes.Buffer
	slog.New(newPrettyHandler(&colored, nil, true)).Error("x")
	if !strings.ContainsRune(colored.String(), 0x1b) {
		t.Errorf("colour mode wrote no colour: %q", colored.String())
	}
}

func TestSetLevelChangesTheInstalledLoggerLive(t *testing.T) {
	_, console, _ := setupIn(t, Options{Service: "bot"}, "json")
	slog.Debug("hidden at INFO")
	SetLevel(slog.LevelDebug)
	t.Cleanup(func() { SetLevel(slog.LevelInfo) })
	slog.Debug("shown at DEBUG")
	SetLevel(LevelCritical)
	slog.Error("hidden at CRITICAL")
	recs := parseLines(t, console.Bytes())
	if len(recs) != 1 || recs[0]["message"] != "shown at DEBUG" {
		t.Fatalf("got %v, want only the record logged while the level was DEBUG", recs)
	}
}
