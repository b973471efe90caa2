package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is the logging configuration, normally read from the environment
// by ConfigFromEnv. DefaultConfig gives the defaults.
type Config struct {
	Level      slog.Level // LOG_LEVEL: DEBUG, INFO (default), WARNING, ERROR, CRITICAL
	Format     string     // LOG_FORMAT: "json" (default) or "pretty"
	ToFile     bool       // LOG_TO_FILE: "1"/"true" writes files under Dir (default off)
	Dir        string     // LOG_DIR: the logs directory (default "logs")
	MaxSizeMB  int        // LOG_MAX_SIZE_MB: rotate a file at this size (default 100)
	MaxBackups int        // LOG_MAX_BACKUPS: archives kept per file (default 10)
	MaxAgeDays int        // LOG_MAX_AGE_DAYS: archives older than this are deleted (default 30)
	RedactKeys []string   // LOG_REDACT_KEYS: extra secret keys, comma-separated
	AddSource  bool       // LOG_SOURCE: "1"/"true" adds file:line (default off)
}

// DefaultConfig returns the configuration with no variable set.
func DefaultConfig() Config {
	return Config{Level: slog.LevelInfo, Format: "json", Dir: "logs", MaxSizeMB: 100, MaxBackups: 10, MaxAgeDays: 30}
}

// ConfigFromEnv reads the LOG_* variables through getenv (os.Getenv when
// nil). Each bad value is reported in the error, by variable, value and
// what is allowed; all of them at once, so one run shows every mistake.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := DefaultConfig()
	var errs []error
	bad := func(name, val, want string) {
		errs = append(errs, fmt.Errorf("%s=%q: want %s", name, val, want))
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		l, err := ParseLevel(v)
		if err != nil {
			bad("LOG_LEVEL", v, "one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
		}
		c.Level = l
	}
	if v := getenv("LOG_FORMAT"); v != "" {
		switch f := strings.ToLower(strings.TrimSpace(v)); f {
		case "json", "pretty":
			c.Format = f
		default:
			bad("LOG_FORMAT", v, "json or pretty")
		}
	}
	boolVar := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, ok := ParseBool(v)
			if !ok {
				bad(name, v, "1, true, 0 or false")
			}
			*dst = b
		}
	}
	boolVar("LOG_TO_FILE", &c.ToFile)
	boolVar("LOG_SOURCE", &c.AddSource)
	if v := getenv("LOG_DIR"); v != "" {
		c.Dir = v
	}
	intVar := func(name string, dst *int, min int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < min {
				bad(name, v, fmt.Sprintf("a whole number of at least %d", min))
				return
			}
			*dst = n
		}
	}
	intVar("LOG_MAX_SIZE_MB", &c.MaxSizeMB, 1)
	intVar("LOG_MAX_BACKUPS", &c.MaxBackups, 1)
	intVar("LOG_MAX_AGE_DAYS", &c.MaxAgeDays, 1)
	if v := getenv("LOG_REDACT_KEYS"); v != "" {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				c.RedactKeys = append(c.RedactKeys, k)
			}
		}
	}
	return c, errors.Join(errs...)
}

// ParseBool reads a boolean environment value: 1, true, yes, on and 0,
// false, no, off, in any case.
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	return false, false
}

// Options says who is logging and overrides the environment. The zero value
// logs as service "bot" with the environment's configuration.
type Options struct {
	// Service and WorkerID are bound to every record (service, worker_id).
	Service  string
	WorkerID string
	// FileName is the log file's base name: logs/workers/<FileName>.jsonl
	// for a worker, logs/<FileName>/<FileName>.jsonl otherwise. Empty
	// means WorkerID for a worker, else Service.
	FileName string
	// Config, when set, is used instead of reading the environment: read
	// it with ConfigFromEnv and change what the program must decide.
	Config *Config
	// Stdout receives the console form; nil means os.Stdout.
	Stdout io.Writer
	// Deployment is bound to every record; nil means DetectDeployment().
	Deployment *Deployment
}

var (
	level   slog.LevelVar // the level Setup installs; SetLevel changes it
	setupMu sync.Mutex
	current Config // the configuration of the last Setup, for Session
)

// SetLevel changes the minimum level of the logger Setup installed, while
// the program runs.
func SetLevel(l slog.Level) { level.Set(l) }

// Setup configures logging for the whole process, as the design's
// setup_logging does: it reads the environment (or opts.Config), binds the
// service, worker id and deployment context process-wide, opens the log
// files when LOG_TO_FILE is on, and installs the result as slog.Default().
// It returns that logger and a function that flushes and closes the files.
// A log directory that cannot be written is an error, and nothing is
// installed.
func Setup(opts Options) (*slog.Logger, func() error, error) {
	cfg := opts.Config
	if cfg == nil {
		c, err := ConfigFromEnv(nil)
		if err != nil {
			return nil, nil, err
		}
		cfg = &c
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	level.Set(cfg.Level)
	hopts := &HandlerOptions{Level: &level, AddSource: cfg.AddSource, RedactKeys: cfg.RedactKeys}
	handlers := []slog.Handler{consoleHandler(cfg.Format, stdout, hopts)}

	var files []*File
	closeAll := func() error {
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	if cfg.ToFile {
		base, dir := logFile(opts)
		f, err := openLogFile(*cfg, filepath.Join(cfg.Dir, dir, base+".jsonl"))
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
		handlers = append(handlers, NewJSONHandler(f, hopts))
		if cfg.Format == "pretty" {
			dev, err := openLogFile(*cfg, filepath.Join(cfg.Dir, dir, base+"-dev.log"))
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			files = append(files, dev)
			handlers = append(handlers, newPrettyHandler(dev, hopts, false))
		}
	}

	d := opts.Deployment
	if d == nil {
		dd := DetectDeployment()
		d = &dd
	}
	BindDeployment(*d)
	service := opts.Service
	if service == "" {
		service = "bot"
	}
	Bind(KeyService, service)
	if opts.WorkerID != "" {
		Bind(KeyWorkerID, opts.WorkerID)
	}

	var h slog.Handler = handlers[0]
	if len(handlers) > 1 {
		h = slog.NewMultiHandler(handlers...)
	}
	logger := slog.New(h)
	slog.SetDefault(logger)
	setupMu.Lock()
	current = *cfg
	setupMu.Unlock()
	var once sync.Once
	var closeErr error
	return logger, func() error { once.Do(func() { closeErr = closeAll() }); return closeErr }, nil
}

func consoleHandler(format string, w io.Writer, opts *HandlerOptions) slog.Handler {
	if format == "pretty" {
		return NewPrettyHandler(w, opts)
	}
	return NewJSONHandler(w, opts)
}

// logFile returns the base name and the directory, under the log dir, of
// the file for opts: the design's logs/bot/bot.jsonl and
// logs/workers/<worker_id>.jsonl.
func logFile(opts Options) (base, dir string) {
	base = opts.FileName
	if opts.WorkerID != "" {
		if base == "" {
			base = opts.WorkerID
		}
		return base, "workers"
	}
	if base == "" {
		base = opts.Service
	}
	if base == "" {
		base = "bot"
	}
	return base, base
}

func openLogFile(cfg Config, path string) (*File, error) {
	f, err := OpenFile(path, RotateOptions{
		MaxSize:    int64(cfg.MaxSizeMB) << 20,
		MaxBackups: cfg.MaxBackups,
		MaxAge:     time.Duration(cfg.MaxAgeDays) * 24 * time.Hour,
		ArchiveDir: filepath.Join(cfg.Dir, "archive"),
	})
	if err != nil {
		return nil, fmt.Errorf("LOG_DIR=%q cannot hold the log files: %w", cfg.Dir, err)
	}
	return f, nil
}

// Session returns a logger for a named session (a browser session, say)
// whose records go to logs/workers/<name>.log as well as wherever the
// default logger writes, and a function that closes that file. With files
// off (LOG_TO_FILE unset) it is the default logger with a session field.
func Session(name string) (*slog.Logger, func() error, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, nil, fmt.Errorf("session name %q: want a non-empty name without slashes", name)
	}
	setupMu.Lock()
	cfg := current
	setupMu.Unlock()
	parent := slog.Default().Handler()
	if !cfg.ToFile {
		return slog.New(parent).With("session", name), func() error { return nil }, nil
	}
	f, err := openLogFile(cfg, filepath.Join(cfg.Dir, "workers", name+".log"))
	if err != nil {
		return nil, nil, err
	}
	h := slog.NewMultiHandler(parent, NewJSONHandler(f, &HandlerOptions{Level: &level, AddSource: cfg.AddSource, RedactKeys: cfg.RedactKeys}))
	return slog.New(h).With("session", name), f.Close, nil
}
