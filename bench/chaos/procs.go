package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// proc is one child process. It dies with the harness (Pdeathsig), and
// writes stdout and stderr to one file, appended, so the lines of a
// process killed with SIGKILL are all there.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string

	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the child holds its own descriptor
	cmd := exec.Command(p.path, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	return nil
}

func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// stop sends SIGTERM and waits up to timeout, then kills; it returns how
// long the process took to exit.
func (p *proc) stop(timeout time.Duration) (time.Duration, error) {
	if !p.running() {
		return 0, nil
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return time.Since(start), nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, timeout)
	}
}

func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// worker is one worker id and its successive processes ("lives"), each
// logging to its own file.
type worker struct {
	id    string
	port  int
	proc  *proc
	lives []life
}

// life is one process of a worker: its log, and whether the harness
// killed it with SIGKILL (its unfinished jobs are expected to run again).
type life struct {
	log    string
	killed bool
}

// fleet is the system under test: redis-server, the bot, the workers.
type fleet struct {
	dir       string
	bin       string
	redisBin  string
	redisPort int
	redis     *proc
	bot       *proc
	botURL    string
	workers   []*worker
	rdb       *redis.Client
	backlog   int
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// env is the environment of a child: PATH and HOME from ours, nothing
// else that could change its behaviour, then vars.
func env(vars ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
}

func (f *fleet) redisURL() string { return "redis://127.0.0.1:" + strconv.Itoa(f.redisPort) + "/0" }

// startRedis starts redis-server on f.redisPort with its AOF in f.dir
// (appendfsync everysec), so a restart finds what a shutdown kept.
func (f *fleet) startRedis(ctx context.Context) error {
	f.redis = &proc{name: "redis-server", path: f.redisBin, env: env(), log: filepath.Join(f.dir, "redis.log"),
		args: []string{"--port", strconv.Itoa(f.redisPort), "--bind", "127.0.0.1", "--dir", f.dir,
			"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"}}
	if err := f.redis.start(); err != nil {
		return err
	}
	return poll(ctx, 15*time.Second, "redis-server answering PING", func() bool {
		return f.rdb.Ping(ctx).Err() == nil
	})
}

func (f *fleet) startBot(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	f.botURL = "http://127.0.0.1:" + strconv.Itoa(port)
	f.bot = &proc{name: "bot", path: f.bin, args: []string{"bot"}, log: filepath.Join(f.dir, "bot.log"),
		env: env("REDIS_URL="+f.redisURL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT="+strconv.Itoa(port),
			"REDIS_TIMEOUT=1", "JOB_MAX_BACKLOG="+strconv.Itoa(f.backlog))}
	if err := f.bot.start(); err != nil {
		return err
	}
	return waitReady(ctx, f.botURL)
}

// startWorker starts a new life of w.
func (f *fleet) startWorker(ctx context.Context, w *worker) error {
	log := filepath.Join(f.dir, fmt.Sprintf("%s.%d.log", w.id, len(w.lives)))
	w.proc = &proc{name: w.id, path: f.bin, args: []string{"worker"}, log: log,
		env: env("REDIS_URL="+f.redisURL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT="+strconv.Itoa(w.port),
			"WORKER_ID="+w.id, "WORKER_CONCURRENCY=4", "HEARTBEAT_INTERVAL=1", "SHUTDOWN_GRACE=5",
			"JOB_VISIBILITY_TIMEOUT=5", "LOG_LEVEL=DEBUG")}
	w.lives = append(w.lives, life{log: log})
	if err := w.proc.start(); err != nil {
		return err
	}
	return waitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(w.port))
}

// killWorker sends SIGKILL to w and records that its life ended so.
func (f *fleet) killWorker(w *worker) {
	w.lives[len(w.lives)-1].killed = true
	w.proc.kill()
}

// start builds nothing: it starts Redis, the bot and n workers.
func (f *fleet) start(ctx context.Context, n int) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	f.redisPort = port
	f.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port),
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: -1})
	if err := f.startRedis(ctx); err != nil {
		return err
	}
	if err := f.startBot(ctx); err != nil {
		return err
	}
	for i := range n {
		p, err := freePort()
		if err != nil {
			return err
		}
		w := &worker{id: fmt.Sprintf("worker-%d", i+1), port: p}
		f.workers = append(f.workers, w)
		if err := f.startWorker(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// close stops every child, workers first.
func (f *fleet) close() {
	for _, w := range f.workers {
		if w.proc != nil {
			_, _ = w.proc.stop(10 * time.Second)
		}
	}
	if f.bot != nil {
		_, _ = f.bot.stop(5 * time.Second)
	}
	if f.redis != nil {
		_ = f.redis.signal(syscall.SIGCONT)
		_, _ = f.redis.stop(10 * time.Second)
	}
	if f.rdb != nil {
		_ = f.rdb.Close()
	}
}

func waitReady(ctx context.Context, base string) error {
	return poll(ctx, 20*time.Second, base+"/readyz answering 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// poll calls ok every 50 ms until it is true, or fails after limit.
func poll(ctx context.Context, limit time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
