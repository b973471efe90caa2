package logging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"
)

// parseLines decodes each line of out as one JSON object.
func parseLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		recs = append(recs, m)
	}
	return recs
}

// topKeys returns the top-level keys of one JSON object, in order.
func topKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// isolate gives a test an empty process-wide binding and restores it after.
func isolate(t *testing.T) {
	t.Helper()
	b := Bindings()
	Binding{}.Restore()
	t.Cleanup(b.Restore)
}

func TestSlogtestConformance(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return NewJSONHandler(&buf, nil)
	}, func(t *testing.T) map[string]any {
		recs := parseLines(t, buf.Bytes())
		if len(recs) != 1 {
			t.Fatalf("got %d records, want 1: %s", len(recs), buf.Bytes())
		}
		m := recs[0]
		// slogtest looks for slog's built-in keys.
		for ours, theirs := range map[string]string{"timestamp": slog.TimeKey, "levelname": slog.LevelKey, "message": slog.MessageKey} {
			if v, ok := m[ours]; ok {
				m[theirs] = v
				delete(m, ours)
			}
		}
		return m
	})
}

func TestRecordLayout(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	logger := slog.New(NewJSONHandler(&buf, &HandlerOptions{AddSource: true}))
	Bind("region", "eu-central-1", "service", "worker", "hostname", "bot-server-01")
	logger = Named(logger, "jobs").With("deployment_env", "production", "container_id", "a1b2c3", "worker_id", "worker-1")
	ctx := With(context.Background(), "job_id", "browser.navigate.abc123")
	logger.InfoContext(ctx, "Processing user request", "user", "u-42", slog.Group("req", "attempt", 2, "ok", true))

	line := bytes.TrimSpace(buf.Bytes())
	got := strings.Join(topKeys(t, line), ",")
	want := "timestamp,levelname,logger,message,service,worker_id,job_id,hostname,container_id,deployment_env,region,source,user,req"
	if got != want {
		t.Fatalf("keys\n got %s\nwant %s", got, want)
	}
	m := parseLines(t, line)[0]
	if _, err := time.Parse(time.RFC3339Nano, m["timestamp"].(string)); err != nil || !strings.HasSuffix(m["timestamp"].(string), "Z") || !strings.Contains(m["timestamp"].(string), ".") {
		t.Errorf("timestamp %q: want RFC 3339 UTC with fraction (%v)", m["timestamp"], err)
	}
	if m["levelname"] != "INFO" || m["logger"] != "jobs" || m["job_id"] != "browser.navigate.abc123" {
		t.Errorf("got %v", m)
	}
	if req := m["req"].(map[string]any); req["attempt"] != 2.0 || req["ok"] != true {
		t.Errorf("req group = %v", req)
	}
	if src := m["source"].(string); !strings.HasPrefix(src, "logging/handler_test.go:") {
		t.Errorf("source = %q, want logging/handler_test.go:<line>", src)
	}
}

func TestLevelNames(t *testing.T) {
	isolate(t)
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug, "DEBUG"}, {slog.LevelDebug + 2, "DEBUG"}, {slog.LevelInfo, "INFO"},
		{slog.LevelInfo + 2, "INFO"}, {slog.LevelWarn, "WARNING"}, {slog.LevelError, "ERROR"},
		{LevelCritical, "CRITICAL"}, {LevelCritical + 4, "CRITICAL"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		slog.New(NewJSONHandler(&buf, &HandlerOptions{Level: slog.LevelDebug})).Log(context.Background(), tt.level, "m")
		if got := parseLines(t, buf.Bytes())[0]["levelname"]; got != tt.want {
			t.Errorf("level %v: got %v, want %s", tt.level, got, tt.want)
		}
	}
}

func TestLevelVarChangesLive(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	var lv slog.LevelVar
	logger := slog.New(NewJSONHandler(&buf, &HandlerOptions{Level: &lv}))
	logger.Debug("hidden")
	lv.Set(slog.LevelDebug)
	logger.Debug("shown")
	recs := parseLines(t, buf.Bytes())
	if len(recs) != 1 || recs[0]["message"] != "shown" {
		t.Fatalf("got %v, want only the record after the level change", recs)
	}
}

func TestContextBindingPerGoroutine(t *testing.T) {
	isolate(t)
	var buf syncBuffer
	logger := slog.New(NewJSONHandler(&buf, nil))
	Bind("service", "worker")
	var wg sync.WaitGroup
	for _, id := range []string{"echo.aaaaaa", "sleep.bbbbbb"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := With(context.Background(), "job_id", id)
			for range 100 {
				logger.InfoContext(ctx, "step", "job", id)
			}
		}()
	}
	wg.Wait()
	recs := parseLines(t, buf.Bytes())
	if len(recs) != 200 {
		t.Fatalf("got %d records, want 200", len(recs))
	}
	for _, m := range recs {
		if m["job_id"] != m["job"] || m["service"] != "worker" {
			t.Fatalf("record mixes contexts: %v", m)
		}
	}
}

func TestBindingPrecedence(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	Bind("service", "global", "extra", 1)
	logger := slog.New(NewJSONHandler(&buf, nil))
	logger.Info("a")
	logger.With("service", "handler").Info("b")
	ctx := With(context.Background(), "service", "ctx")
	logger.With("service", "handler").InfoContext(ctx, "c")
	Bind("service", "rebound")
	logger.Info("d")
	Unbind("service", "extra")
	logger.Info("e")
	recs := parseLines(t, buf.Bytes())
	for i, want := range []any{"global", "handler", "ctx", "rebound", nil} {
		if got := recs[i]["service"]; got != want {
			t.Errorf("record %d: service = %v, want %v", i, got, want)
		}
	}
	if recs[0]["extra"] != 1.0 || recs[4]["extra"] != nil {
		t.Errorf("extra: got %v then %v", recs[0]["extra"], recs[4]["extra"])
	}
}

func TestRedactionInRecords(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	logger := slog.New(NewJSONHandler(&buf, &HandlerOptions{RedactKeys: []string{"ssn"}}))
	Bind("db_password", "hunter2")
	logger.With("api_key", "k-123").Info("connecting to redis://:s3cr3t@redis:6379/0",
		"url", "https://bot:pa55word@api.example.com/v1",
		"ssn", "123-45-6789",
		slog.Group("auth", "Authorization", "Bearer abcdef0123456789", slog.Group("deep", "token", "t-1")),
		"error", errors.New("dial redis://:s3cr3t@redis:6379: refused"),
	)
	out := buf.String()
	for _, secret := range []string{"hunter2", "k-123", "s3cr3t", "pa55word", "123-45-6789", "abcdef0123456789", "t-1"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q reached the log line: %s", secret, out)
		}
	}
	m := parseLines(t, buf.Bytes())[0]
	if m["ssn"] != Redacted || m["auth"].(map[string]any)["deep"].(map[string]any)["token"] != Redacted {
		t.Errorf("redacted keys: %v", m)
	}
	if !strings.Contains(m["url"].(string), "api.example.com") {
		t.Errorf("url lost more than its password: %v", m["url"])
	}
}

// rawJSON is a json.Marshaler that returns its text as it is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// TestFreeTextRedactionInRecords checks key-value pairs with secret keys
// are masked in the message and in every kind of value that carries text,
// and that values which are JSON stay valid JSON.
func TestFreeTextRedactionInRecords(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	type config struct {
		Addr     string `json:"addr"`
		Password string `json:"password"`
	}
	logger := slog.New(NewJSONHandler(&buf, nil))
	logger.Info("connect failed: password=hunter2",
		"error", errors.New("auth: api_key=sk-live-1 rejected"),
		"cmd", "curl -H 'X-Api-Key: k-2' 'http://h/?token=t-3&x=1'",
		"config", config{Addr: "redis:6379", Password: "pw-4"},
		"dump", fmt.Sprintf("%+v", config{Addr: "redis:6379", Password: "pw-5"}),
		"usage", rawJSON(`{"token_count":5}`),
		"straddle", rawJSON(`{"m":"token=","s":"pw-6"}`),
		"plain", "status=ok time: 5s monkey=1",
	)
	out := buf.String()
	for _, secret := range []string{"hunter2", "sk-live-1", "k-2", "t-3", "pw-4", "pw-5"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q reached the log line: %s", secret, out)
		}
	}
	m := parseLines(t, buf.Bytes())[0]
	want := map[string]any{
		"message": "connect failed: password=[REDACTED]",
		"error":   "auth: api_key=[REDACTED] rejected",
		"cmd":     "curl -H 'X-Api-Key: [REDACTED]' 'http://h/?token=[REDACTED]&x=1'",
		"dump":    "{Addr:redis:6379 Password:[REDACTED]}",
		"plain":   "status=ok time: 5s monkey=1",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if c, ok := m["config"].(map[string]any); !ok || c["password"] != Redacted || c["addr"] != "redis:6379" {
		t.Errorf("config = %v, want an object with its password masked", m["config"])
	}
	if u, ok := m["usage"].(map[string]any); !ok || u["token_count"] != 5.0 {
		t.Errorf("usage = %v, want the object as it was", m["usage"])
	}
	// Masking "token=" reads the JSON's own quote as the value's; the
	// marshaler's output becomes a string rather than a broken record.
	if s, ok := m["straddle"].(string); !ok || !strings.Contains(s, "token=") {
		t.Errorf("straddle = %#v, want the masked JSON text as a string", m["straddle"])
	}
}

func TestHostileInputStaysOneLine(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	logger := slog.New(NewJSONHandler(&buf, nil))
	forged := "ok\n{\"levelname\":\"CRITICAL\",\"message\":\"forged\"}\r\x1b[2J\u2028\xff"
	logger.Info(forged, forged, forged, "n", 1.5, "nan", json.Number("1"), "inf", 0.0)
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("one record became %d lines: %q", len(lines), buf.String())
	}
	m := parseLines(t, buf.Bytes())[0]
	if !strings.HasPrefix(m["message"].(string), "ok\n{") {
		t.Errorf("message not preserved: %q", m["message"])
	}
}

func TestValueKinds(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	type payload struct {
		URL string `json:"url"`
	}
	logger := slog.New(NewJSONHandler(&buf, nil))
	at := time.Date(2026, 11, 26, 21, 0, 0, 5, time.UTC)
	logger.Info("kinds", "int", -3, "uint", uint64(7), "float", 0.25, "bool", false,
		"dur", 1500*time.Millisecond, "time", at, "nil", nil, "err", errors.New("boom"),
		"struct", payload{URL: "redis://:pw@h:1/0"}, "nan", nanValue())
	m := parseLines(t, buf.Bytes())[0]
	want := map[string]any{"int": -3.0, "uint": 7.0, "float": 0.25, "bool": false, "dur": "1.5s",
		"time": "2026-11-26T21:00:00.000000005Z", "nil": nil, "err": "boom", "nan": "NaN"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if s := m["struct"].(map[string]any)["url"]; strings.Contains(s.(string), "pw@") {
		t.Errorf("struct field kept its password: %v", s)
	}
}

func nanValue() float64 { var z float64; return z / z }

func FuzzJSONHandler(f *testing.F) {
	f.Add("message", "key", "value")
	f.Add("line\nbreak", "k\"ey", "\x00\x1b[31m\u2028")
	f.Add("\xff\xfe", "", "redis://:pw@host")
	f.Add("login: password=hunter2", "cmd", `curl 'http://h/?token=t&x=1' -H "X-Api-Key: k" secret="a b`)
	f.Fuzz(func(t *testing.T, msg, key, val string) {
		var buf bytes.Buffer
		logger := slog.New(NewJSONHandler(&buf, nil)).With("service", val)
		logger.Info(msg, key, val, slog.Group(key, key, val))
		out := buf.Bytes()
		if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("not exactly one line: %q", out)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		for _, k := range []string{"timestamp", "levelname", "message", "service"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("missing %s in %q", k, out)
			}
		}
	})
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers, so allocations vary")
	}
	isolate(t)
	Bind("service", "worker", "worker_id", "worker-1", "hostname", "bot-server-01", "container_id", "a1b2c3",
		"deployment_env", "production", "region", "us-west-1")
	logger := slog.New(NewJSONHandler(io.Discard, nil))
	ctx := With(context.Background(), "job_id", "browser.navigate.abc123")
	allocs := testing.AllocsPerRun(1000, func() {
		logger.LogAttrs(ctx, slog.LevelInfo, "job done", slog.String("type", "echo"), slog.Int("attempt", 1), slog.Duration("took", time.Millisecond))
	})
	if allocs != 0 {
		t.Errorf("a record costs %v allocations, want 0", allocs)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// TestKeyCacheCollisions logs keys that share a cache set, and keys that
// share their first eight bytes, and checks each keeps its own text and its
// own secrecy, and that two keys sharing a set both stay cached.
func TestKeyCacheCollisions(t *testing.T) {
	isolate(t)
	c := NewJSONHandler(io.Discard, nil).c
	set := func(k string) uint32 { return keyHash(k, keyWord(k)) % uint32(len(c.keys)) &^ 1 }
	// Find three keys in one set: more than its two ways hold.
	bySet := map[uint32][]string{}
	var same []string
	for i := 0; same == nil; i++ {
		k := "key_" + strconv.Itoa(i)
		s := set(k)
		bySet[s] = append(bySet[s], k)
		if len(bySet[s]) == 3 {
			same = bySet[s]
		}
	}
	keys := append(same, "request_id_a", "request_id_b", "request_password", "request_passwd_x", "ab", "abc", "a")
	var buf bytes.Buffer
	logger := slog.New(NewJSONHandler(&buf, nil))
	for range 3 {
		for _, k := range keys {
			buf.Reset()
			logger.Info("m", k, "v-"+k)
			m := parseLines(t, buf.Bytes())[0]
			want := "v-" + k
			if defaultRedactor.SecretKey(k) {
				want = Redacted
			}
			if m[k] != want {
				t.Fatalf("%s = %v, want %q in %s", k, m[k], want, buf.Bytes())
			}
		}
	}
	if raceEnabled {
		return
	}
	h := NewJSONHandler(io.Discard, nil)
	a, b := same[0], same[1]
	h.c.keyInfo(a)
	h.c.keyInfo(b)
	if n := testing.AllocsPerRun(100, func() { h.c.keyInfo(a); h.c.keyInfo(b) }); n != 0 {
		t.Errorf("two keys of one set allocate %v times a round, want 0: the set should hold both", n)
	}
}

// TestMergedSlotsPerHandler checks that handlers derived from one another
// each carry their own context fields, whichever logs first, and follow a
// later Bind.
func TestMergedSlotsPerHandler(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	base := slog.New(NewJSONHandler(&buf, nil))
	Bind("service", "global", "region", "eu-1")
	a := base.With("service", "a")
	grouped := a.WithGroup("g")
	b := a.With("worker_id", "w-b")
	named := Named(b, "jobs")
	extra := a.With("k", 1)
	tests := []struct {
		name   string
		logger *slog.Logger
		want   map[string]any
	}{
		{"base", base, map[string]any{"service": "global", "region": "eu-1"}},
		{"b", b, map[string]any{"service": "a", "worker_id": "w-b", "region": "eu-1"}},
		{"a", a, map[string]any{"service": "a", "worker_id": nil, "region": "eu-1"}},
		{"grouped", grouped, map[string]any{"service": "a", "worker_id": nil}},
		{"named", named, map[string]any{"service": "a", "worker_id": "w-b", "logger": "jobs"}},
		{"extra", extra, map[string]any{"service": "a", "worker_id": nil, "k": 1.0}},
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, tt := range tests {
			buf.Reset()
			tt.logger.Info("m", "x", 1)
			m := parseLines(t, buf.Bytes())[0]
			for k, want := range tt.want {
				if got := m[k]; got != want {
					t.Errorf("%s: %s = %v, want %v (%s)", tt.name, k, got, want, buf.Bytes())
				}
			}
		}
	}
	check(t)
	Bind("region", "us-2")
	tests[0].want["region"], tests[1].want["region"], tests[2].want["region"] = "us-2", "us-2", "us-2"
	check(t)
}
