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
	// Service and WorkerID are bound to every record (service, worker_id)
	// of the logger Setup or New returns, on the logger itself: two
	// loggers in one process each carry their own.
	Service  string
	WorkerID string
	// FileName is the log file's base name: logs/workers/<FileName>.jsonl
	// for a worker, logs/<FileName>/<FileName>.jsonl otherwise. Empty
	// means WorkerID for a worker, else Service.
	FileName string
	// Config, when set, is used instead of reading the environment: read
	// it with ConfigFromEnv and change what the program must decide.
	Config *Config
	// Stdout receives the console form; nil means os.Stdout. Two loggers
	// may share it when its Write is safe for concurrent use, as
	// os.Stdout's is.
	Stdout io.Writer
	// Deployment is bound to every record, like Service; nil means
	// DetectDeployment().
	Deployment *Deployment
	// Level, when set, is the level the logger follows, so the program
	// can change it while it runs; Setup and New set it to the
	// configuration's level. nil means the level SetLevel changes for
	// Setup, and a level of the logger's own for New.
	Level *slog.LevelVar
}

// config returns the configuration opts asks for: opts.Config, or the
// environment's.
func (o Options) config() (Config, error) {
	if o.Config != nil {
		return *o.Config, nil
	}
	return ConfigFromEnv(nil)
}

// identity returns the attributes that say who logs: service, worker id
// and deployment, as the design's bind_log_context and
// bind_deployment_context bind them.
func (o Options) identity(d Deployment) []slog.Attr {
	service := o.Service
	if service == "" {
		service = "bot"
	}
	attrs := []slog.Attr{slog.String(KeyService, service)}
	if o.WorkerID != "" {
		attrs = append(attrs, slog.String(KeyWorkerID, o.WorkerID))
	}
	return append(attrs, d.Attrs()...)
}

var (
	level   slog.LevelVar // the level Setup installs; SetLevel changes it
	setupMu sync.Mutex
	current setupState // what the last Setup installed, for Session
)

// setupState is what Session needs of the last Setup.
type setupState struct {
	cfg      Config
	level    slog.Leveler
	identity []slog.Attr
}

// SetLevel changes the minimum level of the logger Setup installed, while
// the program runs.
func SetLevel(l slog.Level) { level.Set(l) }

// Setup configures logging for a program that is one service, as the
// design's setup_logging does: it builds a logger with New (the
// environment's or opts.Config's configuration, the service, worker id and
// deployment bound to it, the log files opened when LOG_TO_FILE is on) and
// installs it as slog.Default(), so that plain slog calls anywhere in the
// program carry the same fields. It returns that logger and a function that
// flushes and closes the files. A log directory that cannot be written is
// an error, and nothing is installed.
//
// Setup binds nothing process-wide (see Bind): a program that runs two
// services side by side calls New for the second, or for both.
func Setup(opts Options) (*slog.Logger, func() error, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, nil, err
	}
	opts.Config = &cfg
	if opts.Level == nil {
		opts.Level = &level
	}
	d := opts.deployment()
	opts.Deployment = &d
	logger, closeLogs, err := New(opts)
	if err != nil {
		return nil, nil, err
	}
	slog.SetDefault(logger)
	setupMu.Lock()
	current = setupState{cfg: cfg, level: opts.Level, identity: opts.identity(d)}
	setupMu.Unlock()
	return logger, closeLogs, nil
}

// New returns a logger configured as Setup's is, and a function that
// flushes and closes its files, but installs nothing: slog.Default() and
// the process-wide binding stay as they are. Its records carry opts'
// service, worker id and deployment, bound to the logger itself, so they
// win over anything bound with Bind (a field bound closer to the call
// wins, and a context from With is closer still). A program running two
// services gives each its own:
//
//	botLog, closeBot, err := logging.New(logging.Options{Service: "bot"})
//	...
//	workerLog, closeWorker, err := logging.New(logging.Options{Service: "worker", WorkerID: "worker-1"})
//
// With LOG_TO_FILE on, each writes its own file (logs/bot/bot.jsonl,
// logs/workers/worker-1.jsonl); both write the console form to opts.Stdout.
func New(opts Options) (*slog.Logger, func() error, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, nil, err
	}
	lv := opts.Level
	if lv == nil {
		lv = new(slog.LevelVar)
	}
	lv.Set(cfg.Level)
	h, closeLogs, err := newHandler(cfg, opts, &HandlerOptions{Level: lv, AddSource: cfg.AddSource, RedactKeys: cfg.RedactKeys})
	if err != nil {
		return nil, nil, err
	}
	return slog.New(h.WithAttrs(opts.identity(opts.deployment()))), closeLogs, nil
}

// deployment returns opts.Deployment, or the detected one.
func (o Options) deployment() Deployment {
	if o.Deployment != nil {
		return *o.Deployment
	}
	return DetectDeployment()
}

// newHandler returns the handler writing cfg's outputs for opts: the
// console form, and the files when cfg.ToFile is on. The function closes
// the files, once.
func newHandler(cfg Config, opts Options, hopts *HandlerOptions) (slog.Handler, func() error, error) {
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
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
		f, err := openLogFile(cfg, filepath.Join(cfg.Dir, dir, base+".jsonl"))
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
		handlers = append(handlers, NewJSONHandler(f, hopts))
		if cfg.Format == "pretty" {
			dev, err := openLogFile(cfg, filepath.Join(cfg.Dir, dir, base+"-dev.log"))
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			files = append(files, dev)
			handlers = append(handlers, newPrettyHandler(dev, hopts, false))
		}
	}
	var h slog.Handler = handlers[0]
	if len(handlers) > 1 {
		h = slog.NewMultiHandler(handlers...)
	}
	var once sync.Once
	var closeErr error
	return h, func() error { once.Do(func() { closeErr = closeAll() }); return closeErr }, nil
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
	st := current
	setupMu.Unlock()
	parent := slog.Default().Handler()
	if !st.cfg.ToFile {
		return slog.New(parent).With("session", name), func() error { return nil }, nil
	}
	f, err := openLogFile(st.cfg, filepath.Join(st.cfg.Dir, "workers", name+".log"))
	if err != nil {
		return nil, nil, err
	}
	// The file's handler is new, so it gets the identity the default
	// logger's handler carries.
	file := NewJSONHandler(f, &HandlerOptions{Level: st.level, AddSource: st.cfg.AddSource, RedactKeys: st.cfg.RedactKeys}).WithAttrs(st.identity)
	return slog.New(slog.NewMultiHandler(parent, file)).With("session", name), f.Close, nil
}
