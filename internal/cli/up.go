package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/botfleet/botfleet/internal/supervisor"
	"github.com/botfleet/botfleet/logging"
	"github.com/botfleet/botfleet/monitoring"
	"github.com/botfleet/botfleet/worker"
)

func init() {
	register(command{name: "up", summary: "run the whole fleet on this machine: Redis (embedded unless REDIS_URL), the bot, workers and sample load", run: runUp})
}

// upDefaults are the variables `up` sets for its children unless the user
// set them: files on (the design's logs/ layout), endpoints on loopback,
// and a heartbeat quick enough to watch.
var upDefaults = map[string]string{
	"LOG_TO_FILE":        "1",
	"METRICS_ADDR":       "127.0.0.1",
	"HEARTBEAT_INTERVAL": "5",
	// The sample load's http.fetch jobs fetch the bot's own /livez.
	"HTTP_FETCH_ALLOW": "127.0.0.1",
}

func runUp(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "up", "[-workers N] [-load RATE] [-port PORT]")
	workers := fs.Int("workers", 3, "number of workers")
	load := fs.Float64("load", 3, "sample jobs per second submitted through the bot's web API (0: none)")
	port := fs.Int("port", monitoring.DefaultPort, "the bot's port; worker i listens on port+i")
	redisPort := fs.Int("redis-port", 6379, "the embedded Redis's first port to try (the next free one is taken)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *workers < 0 || *workers > 64 || *load < 0 || *port < 1 || *port+*workers > 65535 {
		fmt.Fprintln(env.Stderr, "botfleet up: -workers must be 0..64, -load at least 0, and -port+workers a valid port")
		return errUsage
	}
	// Validate the children's environment once, here, so a bad variable
	// is one clear error instead of crashing children.
	childOpts, err := worker.FromEnv(env.Getenv)
	_, logErr := logging.ConfigFromEnv(env.Getenv)
	if err := badEnvironment(err, logErr); err != nil {
		return err
	}
	logger := slog.New(logging.NewPrettyHandler(env.Stderr, nil)).With(logging.KeyService, "up")
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the botfleet binary: %w", err)
	}

	redisURL := env.Getenv("REDIS_URL")
	if redisURL == "" {
		mr, err := startEmbeddedRedis(*redisPort)
		if err != nil {
			return err
		}
		defer mr.Close()
		redisURL = "redis://" + mr.Addr() + "/0"
	}
	for i := 0; i <= *workers; i++ {
		if err := portFree(*port + i); err != nil {
			return fmt.Errorf("port %d is taken (%v); pick another base with -port", *port+i, err)
		}
	}

	base := childEnv(env, redisURL)
	sup := supervisor.New(supervisor.Options{Output: env.Stdout, Color: isTerminalWriter(env.Stdout), Logger: logger})
	defer sup.StopAll(5 * time.Second)
	botURL := fmt.Sprintf("http://127.0.0.1:%d", *port)
	if err := sup.Start(supervisor.Spec{Name: "bot", Path: exe, Args: []string{"bot"}, Env: append(base, "METRICS_PORT="+strconv.Itoa(*port))}); err != nil {
		return err
	}
	var workerNames []string
	for i := 1; i <= *workers; i++ {
		name := fmt.Sprintf("worker-%d", i)
		workerNames = append(workerNames, name)
		spec := supervisor.Spec{Name: name, Path: exe, Args: []string{"worker"},
			Env: append(base, "WORKER_ID="+name, "METRICS_PORT="+strconv.Itoa(*port+i))}
		if err := sup.Start(spec); err != nil {
			return err
		}
	}
	if err := waitLive(ctx, botURL); err != nil {
		return fmt.Errorf("the bot did not come up: %w", err)
	}
	printWhere(env.Stderr, redisURL, botURL, *port, workerNames, lookup(base, "LOG_DIR", "logs"))

	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		runLoad(loadCtx, logger, botURL, *load, lookup(base, "METRICS_AUTH_TOKEN", ""))
	}()

	<-ctx.Done()
	stopLoad()
	<-loadDone
	grace := childOpts.ShutdownGrace
	logger.Info("stopping: workers first, then the bot")
	sup.Stop(grace+5*time.Second, workerNames...)
	sup.Stop(10*time.Second, "bot")
	sup.StopAll(5 * time.Second)
	logger.Info("fleet stopped")
	return nil
}

// startEmbeddedRedis starts miniredis on 127.0.0.1, on port first or the
// next free one, so redis-cli and the design's debug commands work.
func startEmbeddedRedis(first int) (*miniredis.Miniredis, error) {
	var lastErr error
	for p := first; p < first+100 && p <= 65535; p++ {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err != nil {
			lastErr = err
			continue
		}
		return mr, nil
	}
	return nil, fmt.Errorf("start the embedded Redis on 127.0.0.1:%d..%d: %w (or set REDIS_URL)", first, first+99, lastErr)
}

// childEnv is the environment of every child: ours, with up's defaults
// where the user set nothing, and REDIS_URL.
func childEnv(env *Env, redisURL string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDIS_URL=") && !strings.HasPrefix(kv, "LOG_FORMAT=") {
			out = append(out, kv)
		}
	}
	for k, v := range upDefaults {
		if env.Getenv(k) == "" {
			out = append(out, k+"="+v)
		}
	}
	// Children log JSON; up renders it for the console.
	return append(out, "REDIS_URL="+redisURL, "LOG_FORMAT=json")
}

func lookup(env []string, key, def string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok && v != "" {
			return v
		}
	}
	return def
}

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

func waitLive(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := monitoring.Probe(pctx, base+"/livez")
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printWhere(w io.Writer, redisURL, botURL string, port int, workers []string, logDir string) {
	hint := "redis-cli -u " + logging.RedactString(redisURL)
	if strings.Contains(redisURL, "+sentinel://") {
		hint = "through Sentinel; redis-cli -p <sentinel port> SENTINEL get-master-addr-by-name <master>"
	}
	fmt.Fprintf(w, "\nbotfleet is up\n  redis      %s   (%s)\n", logging.RedactString(redisURL), hint)
	fmt.Fprintf(w, "  dashboard  %s/   (botfleet status, with REDIS_URL=%s)\n", botURL, logging.RedactString(redisURL))
	fmt.Fprintf(w, "  bot        %s/health  %s/metrics  jobs API %s/api/jobs  discovery %s/api/fleet/targets\n", botURL, botURL, botURL, botURL)
	for i, name := range workers {
		u := fmt.Sprintf("http://127.0.0.1:%d", port+i+1)
		fmt.Fprintf(w, "  %-10s %s/health  %s/metrics\n", name, u, u)
	}
	fmt.Fprintf(w, "  logs       %s/ (bot/bot.jsonl, workers/<id>.jsonl, archive/)\n  stop       Ctrl-C\n\n", logDir)
}

// sampleJob returns one job of a mix that keeps every path busy: quick
// echoes, sleeps that hold a worker BUSY, real HTTP fetches, and failures
// that exercise retries and dead letters.
func sampleJob(r *rand.Rand, botURL string, n int) (string, any) {
	switch x := r.IntN(100); {
	case x < 40:
		return "echo", map[string]any{"message": "hello from botfleet up", "n": n}
	case x < 70:
		return "sleep", map[string]any{"duration": fmt.Sprintf("%dms", 200+r.IntN(1800))}
	case x < 90:
		return "http.fetch", map[string]any{"url": botURL + "/livez", "timeout": "2s"}
	default:
		return "fail", map[string]any{"message": "simulated failure"}
	}
}

// runLoad submits sample jobs through the bot's web API at rate per second.
func runLoad(ctx context.Context, logger *slog.Logger, botURL string, rate float64, token string) {
	if rate <= 0 {
		return
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	failing := false
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		typ, payload := sampleJob(r, botURL, n)
		body, _ := json.Marshal(map[string]any{"type": typ, "payload": payload})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, botURL+"/api/jobs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			logger.Warn("sample load: the bot refused a job; retrying quietly", "error", err)
			failing = true
		case err == nil && failing:
			logger.Info("sample load: the bot takes jobs again")
			failing = false
		}
	}
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && supervisor.IsTerminal(f)
}
