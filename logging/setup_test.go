package logging

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// TestTwoServicesInOneProcess runs a bot and a worker side by side, each
// with its own logger from New, and checks that every record carries its
// own service and worker_id, whether logged directly, named, or with a
// context from With; that New and Setup bind nothing process-wide; and
// that Setup's slog.Default() carries the single service's fields.
func TestTwoServicesInOneProcess(t *testing.T) {
	isolate(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	Bind("build", "v1.4.2") // process-wide, as a single-service program binds
	cfg := DefaultConfig()
	d := Deployment{Hostname: "bot-server-01", Env: "staging"}
	newLogger := func(opts Options, w *bytes.Buffer) *slog.Logger {
		t.Helper()
		opts.Config, opts.Stdout, opts.Deployment = &cfg, w, &d
		logger, closeLogs, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeLogs() })
		return logger
	}
	var botOut, workerOut bytes.Buffer
	bot := newLogger(Options{Service: "bot"}, &botOut)
	worker := newLogger(Options{Service: "worker", WorkerID: "worker-1"}, &workerOut)
	if slog.Default() != prev {
		t.Error("New installed slog.Default()")
	}

	var wg sync.WaitGroup
	for _, l := range []*slog.Logger{bot, worker} {
		wg.Go(func() {
			for i := range 50 {
				ctx := With(t.Context(), KeyJobID, "echo."+strconv.Itoa(i))
				l.Info("direct")
				l.InfoContext(ctx, "via context")
				Named(l, "jobs").InfoContext(ctx, "named via context")
			}
		})
	}
	wg.Wait()

	// Setup for a third service after the two: it must not change theirs.
	var defaultOut bytes.Buffer
	_, closeLogs, err := Setup(Options{Service: "worker", WorkerID: "worker-2", Config: &cfg, Stdout: &defaultOut, Deployment: &d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLogs() })
	bot.Info("after Setup")
	worker.Info("after Setup")
	ctx := With(t.Context(), KeyJobID, "sleep.000001")
	slog.InfoContext(ctx, "default via context")
	slog.Info("default")

	for _, a := range Attrs(nil) {
		if slotOf(a.Key) >= 0 {
			t.Errorf("New or Setup bound %s process-wide", a)
		}
	}
	tests := []struct {
		name            string
		out             *bytes.Buffer
		records         int
		service, worker any
	}{
		{"bot", &botOut, 151, "bot", nil},
		{"worker", &workerOut, 151, "worker", "worker-1"},
		{"default", &defaultOut, 2, "worker", "worker-2"},
	}
	for _, tt := range tests {
		recs := parseLines(t, tt.out.Bytes())
		if len(recs) != tt.records {
			t.Errorf("%s: got %d records, want %d", tt.name, len(recs), tt.records)
		}
		for _, m := range recs {
			if m["service"] != tt.service || m["worker_id"] != tt.worker || m["hostname"] != "bot-server-01" || m["build"] != "v1.4.2" {
				t.Fatalf("%s: got %v, want service %v, worker_id %v, the deployment and the process-wide build", tt.name, m, tt.service, tt.worker)
			}
			if _, ok := m["job_id"]; ok != strings.Contains(m["message"].(string), "via context") {
				t.Fatalf("%s: job_id and message disagree: %v", tt.name, m)
			}
		}
	}
}

// TestContextHandlerBindingPrecedence checks the pretty form takes each
// context field from the closest binding, as the JSON form does: the
// context, then the logger, then the process.
func TestContextHandlerBindingPrecedence(t *testing.T) {
	isolate(t)
	Bind("service", "global", "region", "eu-1")
	var buf bytes.Buffer
	logger := slog.New(NewPrettyHandler(&buf, nil)).With("service", "handler", "worker_id", "w-1")
	tests := []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{"no context", t.Context(), []string{"service=handler", "worker_id=w-1", "region=eu-1"}},
		{"context", With(t.Context(), "service", "ctx"), []string{"service=ctx", "worker_id=w-1", "region=eu-1"}},
	}
	for _, tt := range tests {
		buf.Reset()
		logger.InfoContext(tt.ctx, "m")
		out := buf.String()
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: %q lacks %q", tt.name, out, w)
			}
		}
		if n := strings.Count(out, "service="); n != 1 {
			t.Errorf("%s: service appears %d times in %q", tt.name, n, out)
		}
	}
}

// TestNewLevel checks a logger from New follows its own level, which
// Options.Level lets the program change, and not the one SetLevel changes.
func TestNewLevel(t *testing.T) {
	isolate(t)
	cfg := DefaultConfig()
	var own, mine bytes.Buffer
	a, _, err := New(Options{Config: &cfg, Stdout: &own, Deployment: &Deployment{}})
	if err != nil {
		t.Fatal(err)
	}
	var lv slog.LevelVar
	b, _, err := New(Options{Config: &cfg, Stdout: &mine, Deployment: &Deployment{}, Level: &lv})
	if err != nil {
		t.Fatal(err)
	}
	SetLevel(slog.LevelDebug)
	t.Cleanup(func() { SetLevel(slog.LevelInfo) })
	a.Debug("hidden: SetLevel is Setup's")
	b.Debug("hidden: still INFO")
	lv.Set(slog.LevelDebug)
	b.Debug("shown")
	if own.Len() != 0 {
		t.Errorf("SetLevel changed a logger from New: %s", own.Bytes())
	}
	if recs := parseLines(t, mine.Bytes()); len(recs) != 1 || recs[0]["message"] != "shown" {
		t.Errorf("got %v, want only the record logged after Options.Level changed", recs)
	}
}
