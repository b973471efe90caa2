package bot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/internal/chattest"
	"github.com/botfleet/botfleet/jobs"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name, text string
		want       bot.Command
	}{
		{"status", "status", bot.Command{Name: "status"}},
		{"slash and case", "/STATUS", bot.Command{Name: "status"}},
		{"telegram bot suffix", "/run@fleet_bot echo {\"a\": 1}", bot.Command{Name: "run", Arg: "echo", Payload: `{"a": 1}`}},
		{"run, payload with spaces and lines", "run  http.fetch \n {\"url\": \"https://example.com\"} ",
			bot.Command{Name: "run", Arg: "http.fetch", Payload: `{"url": "https://example.com"}`}},
		{"run without payload", "run echo", bot.Command{Name: "run", Arg: "echo"}},
		{"run alone", "run", bot.Command{Name: "run"}},
		{"job", "job echo.abc extra", bot.Command{Name: "job", Arg: "echo.abc"}},
		{"help", "Help", bot.Command{Name: "help"}},
		{"telegram start", "/start", bot.Command{Name: "help"}},
		{"empty", "  ", bot.Command{Name: "help"}},
		{"unknown", "dance now", bot.Command{Name: "unknown", Arg: "dance"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bot.ParseCommand(tt.text); got != tt.want {
				t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestCut(t *testing.T) {
	c := bot.NewChat(chattest.New(t).Deps("test_bot", bot.ChatOptions{}), bot.Platform{MaxText: 10})
	tests := []struct{ name, text, want string }{
		{"short", "hello", "hello"},
		{"exactly the limit", "0123456789", "0123456789"},
		{"one over", "0123456789x", "012345678…"},
		// An emoji outside the BMP is two UTF-16 units, as Telegram counts.
		{"surrogate pairs", "😀😀😀😀😀😀", "😀😀😀😀…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Cut(tt.text); got != tt.want {
				t.Errorf("Cut(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestChatCommands(t *testing.T) {
	e := chattest.New(t)
	c := bot.NewChat(e.Deps("test_bot", bot.ChatOptions{MaxPayload: 64}), bot.Platform{HashKey: []byte("k"), MaxText: 4096})
	ctx := context.Background()
	msg := func(text string) bot.Message {
		return bot.Message{User: "user-4242", Text: text, Route: "chat-7", ID: "m1"}
	}
	tests := []struct {
		name, text string
		says       []string
	}{
		{"help lists the types", "help", []string{"run <type>", "echo, fail, http.fetch, sleep"}},
		{"unknown command", "dance", []string{`Unknown command "dance"`, "Commands:"}},
		{"run without a type", "run", []string{"Usage: run <type>"}},
		{"unknown type", "run rm.rf {}", []string{`Unknown job type "rm.rf"`, "echo, fail"}},
		{"payload refused by the type's validator", `run sleep {"duration": "2h"}`, []string{"Not queued", "duration"}},
		{"payload not JSON", "run echo {oops", []string{"Not queued"}},
		{"payload over the cap", `run echo {"m": "` + strings.Repeat("x", 64) + `"}`, []string{"at most 64"}},
		{"job without an id", "job", []string{"Usage: job <id>"}},
		{"unknown job", "job echo.nosuch", []string{`No job "echo.nosuch"`}},
		{"status", "status", []string{"Workers: 0 alive", "Queue default: 0 waiting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Handle(ctx, msg(tt.text))
			for _, s := range tt.says {
				if !strings.Contains(r.Text, s) {
					t.Errorf("%q answered %q, want it to say %q", tt.text, r.Text, s)
				}
			}
			if r.JobID != "" {
				t.Errorf("%q queued job %s", tt.text, r.JobID)
			}
		})
	}
	if n := e.RDB.XLen(ctx, "jobs:default").Val(); n != 0 {
		t.Fatalf("refused commands queued %d jobs", n)
	}

	r := c.Handle(ctx, msg(`/run echo {"message": "hi"}`))
	if !strings.HasPrefix(r.JobID, "echo.") || !strings.Contains(r.Text, "Queued job "+r.JobID) {
		t.Fatalf("run answered %+v", r)
	}
	route := e.RDB.HGetAll(ctx, "bot:reply:"+r.JobID).Val()
	if route["route"] != "chat-7" || route["user"] != c.UserHash("user-4242") || route["frontend"] != "test_bot" {
		t.Errorf("bot:reply:%s = %v", r.JobID, route)
	}
	if got := e.RDB.ZScore(ctx, "bot:replies:test_bot", r.JobID).Val(); got != 0 {
		t.Errorf("the job is due at %v, want 0 (at once)", got)
	}
	if got := c.Handle(ctx, msg("job "+r.JobID)).Text; got != "Job "+r.JobID+" is queued." {
		t.Errorf("job answered %q", got)
	}
	if got := e.Counter(t, "bot_jobs_submitted_total", "frontend", "test_bot", "type", "echo"); got != 1 {
		t.Errorf("bot_jobs_submitted_total = %v, want 1", got)
	}
	if got := e.Counter(t, "bot_frontend_messages_total", "frontend", "test_bot", "command", "run"); got != 6 {
		t.Errorf(`bot_frontend_messages_total{command="run"} = %v, want 6`, got)
	}
	if n := len(e.Records("message_received")); n != len(tests)+2 {
		t.Errorf("%d message_received records, want %d", n, len(tests)+2)
	}
	e.NoneContains(t, "user-4242", "chat-7")
}

func TestRateLimit(t *testing.T) {
	e := chattest.New(t)
	c := bot.NewChat(e.Deps("test_bot", bot.ChatOptions{RateLimit: 2, RateWindow: time.Hour}), bot.Platform{})
	ctx := context.Background()
	var got []string
	for range 4 {
		got = append(got, c.Handle(ctx, bot.Message{User: "alice", Text: "help"}).Text)
	}
	if !strings.HasPrefix(got[1], "Commands:") || !strings.HasPrefix(got[2], "Slow down: at most 2 messages per 1h0m0s") || got[3] != "" {
		t.Errorf("answers %q: want two answers, one warning, then silence", got)
	}
	if r := c.Handle(ctx, bot.Message{User: "bob", Text: "help"}); !strings.HasPrefix(r.Text, "Commands:") {
		t.Errorf("another user was limited too: %q", r.Text)
	}
	if n := e.Counter(t, "bot_frontend_rate_limited_total", "frontend", "test_bot"); n != 2 {
		t.Errorf("bot_frontend_rate_limited_total = %v, want 2", n)
	}
	if n := len(e.Records("rate_limited")); n != 2 {
		t.Errorf("%d rate_limited records, want 2", n)
	}
	e.NoneContains(t, "alice", "bob")
}

// sent records what a SendFunc was asked to send.
type sent struct {
	mu    sync.Mutex
	calls map[string][]string // route -> texts
	fail  func(route string, n int) error
}

func (s *sent) send(_ context.Context, route, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string][]string{}
	}
	s.calls[route] = append(s.calls[route], text)
	if s.fail != nil {
		return s.fail(route, len(s.calls[route]))
	}
	return nil
}

func (s *sent) get(route string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls[route]...)
}

// finish writes a job's ending into its record, as a worker does.
func finish(t *testing.T, e *chattest.Env, id, status, result string) {
	t.Helper()
	if err := e.RDB.HSet(context.Background(), "job:"+id, "status", status, "result", result, "error", "boom", "attempts", 3).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRepliesExactlyOnceAcrossReplicas(t *testing.T) {
	e := chattest.New(t)
	opts := bot.ChatOptions{PollInterval: 5 * time.Millisecond, RateLimit: -1}
	replicas := []*bot.Chat{
		bot.NewChat(e.Deps("test_bot", opts), bot.Platform{}),
		bot.NewChat(e.Deps("test_bot", opts), bot.Platform{}),
		bot.NewChat(e.Deps("test_bot", opts), bot.Platform{}),
	}
	ctx := context.Background()
	const jobs = 40
	ids := map[string]string{} // route -> job id
	for i := range jobs {
		route := fmt.Sprintf("chat-%d", i)
		r := replicas[i%len(replicas)].Handle(ctx, bot.Message{User: "u", Text: fmt.Sprintf(`run echo {"n": %d}`, i), Route: route})
		if r.JobID == "" {
			t.Fatalf("not queued: %q", r.Text)
		}
		ids[route] = r.JobID
	}
	var s sent
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range replicas {
		wg.Go(func() { _ = c.RunReplies(runCtx, s.send) })
	}
	for route, id := range ids {
		if route != "chat-0" { // one job stays unfinished
			finish(t, e, id, "succeeded", fmt.Sprintf(`{"route": %q}`, route))
		}
	}
	chattest.WaitFor(t, "every finished job's reply settled", func() bool {
		n, _ := replicas[0].Pending(ctx)
		return n == 1
	})
	stop()
	wg.Wait()
	for route, id := range ids {
		got := s.get(route)
		switch {
		case route == "chat-0" && len(got) != 0:
			t.Errorf("the unfinished job got a reply: %q", got)
		case route != "chat-0" && len(got) != 1:
			t.Errorf("%s got %d replies, want exactly one: %q", route, len(got), got)
		case route != "chat-0" && got[0] != fmt.Sprintf(`Job %s succeeded: {"route":%q}`, id, route):
			t.Errorf("%s got %q", route, got[0])
		}
	}
	if n := e.Counter(t, "bot_frontend_jobs_total", "frontend", "test_bot", "status", "succeeded"); n != jobs-1 {
		t.Errorf("bot_frontend_jobs_total = %v, want %d", n, jobs-1)
	}
	if n := len(e.Records("reply_sent")); n != jobs-1 {
		t.Errorf("%d reply_sent records, want %d", n, jobs-1)
	}
	for _, r := range e.Records("reply_sent") {
		if r.Attrs["job_id"] == nil || r.Attrs["kind"] != "result" || r.Attrs["user"] == "u" {
			t.Errorf("reply_sent record %v", r.Attrs)
		}
	}
}

func TestReplyRetriesThenDrops(t *testing.T) {
	e := chattest.New(t)
	c := bot.NewChat(e.Deps("test_bot", bot.ChatOptions{PollInterval: time.Millisecond}), bot.Platform{})
	ctx := context.Background()
	flaky := c.Handle(ctx, bot.Message{User: "u", Text: "run echo", Route: "flaky"}).JobID
	blocked := c.Handle(ctx, bot.Message{User: "u", Text: "run fail", Route: "blocked"}).JobID
	broken := c.Handle(ctx, bot.Message{User: "u", Text: "run echo", Route: "broken"}).JobID
	expired := c.Handle(ctx, bot.Message{User: "u", Text: "run echo", Route: "expired"}).JobID
	finish(t, e, flaky, "succeeded", "{}")
	finish(t, e, blocked, "failed", "")
	finish(t, e, broken, "succeeded", "{}")
	e.RDB.Del(ctx, "job:"+expired)
	s := sent{fail: func(route string, n int) error {
		switch {
		case route == "flaky" && n < 3, route == "broken":
			return errors.New("502 from the platform")
		case route == "blocked":
			return fmt.Errorf("the user blocked the bot: %w", bot.ErrUndeliverable)
		}
		return nil
	}}
	chattest.Go(t, func(ctx context.Context) error { return c.RunReplies(ctx, s.send) })
	chattest.WaitFor(t, "every reply settled", func() bool {
		n, _ := c.Pending(ctx)
		return n == 0
	})
	if got := s.get("flaky"); len(got) != 3 {
		t.Errorf("flaky: %d attempts, want 3 (two failures, then sent)", len(got))
	}
	if got := s.get("blocked"); len(got) != 1 || !strings.Contains(got[0], "failed after 3 attempts: boom") {
		t.Errorf("blocked: %q, want one attempt (undeliverable is not retried)", got)
	}
	if got := s.get("broken"); len(got) != 5 {
		t.Errorf("broken: %d attempts, want 5, then dropped", len(got))
	}
	if got := s.get("expired"); len(got) != 1 || !strings.Contains(got[0], "record expired") {
		t.Errorf("expired: %q", got)
	}
	for _, tt := range []struct {
		result string
		want   float64
	}{{"sent", 2}, {"failed", 2 + 1 + 5}} {
		if got := e.Counter(t, "bot_frontend_replies_total", "frontend", "test_bot", "result", tt.result); got != tt.want {
			t.Errorf("bot_frontend_replies_total{result=%q} = %v, want %v", tt.result, got, tt.want)
		}
	}
	if got := e.Counter(t, "bot_frontend_jobs_total", "frontend", "test_bot", "status", "expired"); got != 1 {
		t.Errorf(`bot_frontend_jobs_total{status="expired"} = %v, want 1`, got)
	}
}

func TestRunWhenTheBacklogIsFull(t *testing.T) {
	e := chattest.New(t)
	d := e.Deps("test_bot", bot.ChatOptions{})
	d.Queue = jobs.NewQueue(e.RDB, "", jobs.QueueOptions{MaxBacklog: 1})
	c := bot.NewChat(d, bot.Platform{})
	ctx := context.Background()
	if r := c.Handle(ctx, bot.Message{User: "u", Text: "run echo", Route: "r"}); r.JobID == "" {
		t.Fatalf("first job not queued: %q", r.Text)
	}
	if r := c.Handle(ctx, bot.Message{User: "u", Text: "run echo", Route: "r"}); r.JobID != "" || r.Text != "The job queue is full; try again later." {
		t.Errorf("over the backlog: %+v", r)
	}
	if n, _ := c.Pending(ctx); n != 1 {
		t.Errorf("%d replies owed, want the first job's only", n)
	}
}
