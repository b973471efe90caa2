package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/botfleet/botfleet/internal/redistest"
	"github.com/botfleet/botfleet/internal/testbin"
)

// nonJSONLines returns the lines of out that are not one JSON object.
func nonJSONLines(out string) []string {
	var bad []string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var v map[string]any
		if line != "" && json.Unmarshal([]byte(line), &v) != nil {
			bad = append(bad, line)
		}
	}
	return bad
}

// TestOnlyJSONWhileRedisIsDown: with Redis gone under a running bot and
// worker, go-redis's own complaints come out as JSON records (logger
// "redis"), and so does everything else they print; `status` prints its
// table or one error line, never go-redis's plain text.
func TestOnlyJSONWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	botPort := testbin.FreePort(t)
	b := testbin.Start(t, []string{"REDIS_URL=" + srv.URL(), "METRICS_ADDR=127.0.0.1", "METRICS_PORT=" + strconv.Itoa(botPort)}, "bot")
	w := startWorker(t, srv, "worker-json")
	testbin.WaitFor(t, 15*time.Second, "the bot's /livez", func() bool {
		code, _ := get(t, "http://127.0.0.1:"+strconv.Itoa(botPort)+"/livez", "")
		return code == http.StatusOK
	})

	srv.Stop(t)
	testbin.WaitFor(t, 60*time.Second, "go-redis's complaints, as JSON records", func() bool {
		return strings.Contains(b.Output()+w.proc.Output(), `"logger":"redis"`)
	})
	cmd := exec.Command(testbin.Path(t), "status")
	cmd.Env = []string{"REDIS_URL=" + srv.URL()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // exit 1: no worker alive, Redis down
	for _, line := range nonJSONLines(stderr.String()) {
		if !strings.HasPrefix(line, "botfleet status: ") {
			t.Errorf("status printed on stderr a line that is neither JSON nor its error: %q", line)
		}
	}
	srv.Restart(t)
	testbin.WaitFor(t, 30*time.Second, "the worker's heartbeat back", func() bool {
		return srv.Client(t).Exists(t.Context(), "worker:heartbeat:worker-json").Val() == 1
	})
	for name, out := range map[string]string{"bot": b.Output(), "worker": w.proc.Output()} {
		if bad := nonJSONLines(out); len(bad) > 0 {
			t.Errorf("the %s printed %d lines that are not JSON, such as %q", name, len(bad), bad[0])
		}
	}
}

// TestRedisRefusingTheSettingsIsAConfigurationError: a database index the
// server does not have is reported at start, naming REDIS_URL, with exit
// code 2, instead of an ERROR every second.
func TestRedisRefusingTheSettingsIsAConfigurationError(t *testing.T) {
	srv := redistest.Start(t)
	for _, cmd := range []string{"worker", "bot"} {
		t.Run(cmd, func(t *testing.T) {
			p := testbin.Start(t, []string{"REDIS_URL=redis://" + srv.Addr() + "/99", "METRICS_ADDR=127.0.0.1", "METRICS_PORT=0"}, cmd)
			if code := p.Wait(t, 30*time.Second); code != 2 || !strings.Contains(p.Output(), "REDIS_URL") || !strings.Contains(p.Output(), "DB index") {
				t.Errorf("exit %d, output:\n%s\nwant exit 2 naming REDIS_URL and the database index", code, p.Output())
			}
		})
	}
}
