package heartbeat

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/internal/redistest"
)

const wireDoc = "../docs/wire-format.md"

// docSession returns the redis-cli session of docs/wire-format.md: the
// ```redis block that starts with MULTI.
func docSession(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(wireDoc)
	if err != nil {
		t.Fatal(err)
	}
	for rest := string(doc); ; {
		_, after, ok := strings.Cut(rest, "```redis\n")
		if !ok {
			t.Fatalf("%s: no ```redis block starting with MULTI", wireDoc)
		}
		block, tail, _ := strings.Cut(after, "```")
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if lines[0] == "MULTI" {
			return lines
		}
		rest = tail
	}
}

// splitArgs splits a redis-cli command line as redis-cli does: words
// separated by spaces, "double quotes" with backslash escapes, 'single
// quotes' with \' only.
func splitArgs(line string) ([]string, error) {
	var args []string
	for i := 0; ; {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		var arg strings.Builder
		switch q := line[i]; q {
		case '"', '\'':
			i++
			for ; i < len(line) && line[i] != q; i++ {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					i++
					c = line[i]
					switch {
					case q == '\'' && c != '\'':
						arg.WriteByte('\\') // only \' escapes inside single quotes
					case q == '"' && c == 'n':
						c = '\n'
					case q == '"' && c == 'r':
						c = '\r'
					case q == '"' && c == 't':
						c = '\t'
					}
				}
				arg.WriteByte(c)
			}
			if i == len(line) {
				return nil, errors.New("unbalanced quotes")
			}
			i++
			if i < len(line) && line[i] != ' ' {
				return nil, errors.New("closing quote must be followed by a space")
			}
		default:
			for ; i < len(line) && line[i] != ' '; i++ {
				arg.WriteByte(line[i])
			}
		}
		args = append(args, arg.String())
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"words", "HSET k  f v", []string{"HSET", "k", "f", "v"}},
		{"empty string", `HSET k f ""`, []string{"HSET", "k", "f", ""}},
		{"single quotes keep JSON", `SET k '{"a":1}'`, []string{"SET", "k", `{"a":1}`}},
		{"double-quote escapes", `SET k "a\"b\n"`, []string{"SET", "k", "a\"b\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitArgs(tt.line)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("splitArgs(%q): got %q, %v; want %q", tt.line, got, err, tt.want)
			}
		})
	}
}

// TestHandWrittenHeartbeat writes a heartbeat with the plain commands of
// docs/wire-format.md, on one connection as a worker in another language
// would, and reads it back.
func TestHandWrittenHeartbeat(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	conn := rdb.Conn()
	defer conn.Close()
	for _, line := range docSession(t) {
		args, err := splitArgs(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		cmd := make([]any, len(args))
		for i, a := range args {
			cmd[i] = a
		}
		if err := conn.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%s: %v", args[0], err)
		}
	}
	checkDocHeartbeat(t, rdb)
}

// TestHandWrittenHeartbeatRedisCLI pipes the same session into redis-cli.
func TestHandWrittenHeartbeatRedisCLI(t *testing.T) {
	srv := redistest.Start(t)
	out := srv.CLI(t, strings.Join(docSession(t), "\n")+"\n")
	if strings.Contains(out, "ERR") {
		t.Fatalf("redis-cli session:\n%s", out)
	}
	checkDocHeartbeat(t, srv.Client(t))
}

func checkDocHeartbeat(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	h := rdb.HGetAll(ctx, KeyPrefix+"worker-1").Val()
	s, err := Decode(h)
	if err != nil {
		t.Fatalf("Decode(hash written by hand): %v", err)
	}
	if s.WorkerID != "worker-1" || s.State != "IDLE" || s.Interval != 30*time.Second || !s.Timestamp.Equal(epoch) ||
		s.Resources.MemoryMB != 245.7 || s.System.PID != 4242 || s.CurrentJob != "" {
		t.Errorf("decoded: got %+v", s)
	}
	if ttl := rdb.TTL(ctx, KeyPrefix+"worker-1").Val(); ttl <= 0 || ttl > 90*time.Second {
		t.Errorf("TTL: got %v, want in (0, 90s]", ttl)
	}
	if score := rdb.ZScore(ctx, IndexKey, "worker-1").Val(); score != 1688851200.123 {
		t.Errorf("index score: got %f", score)
	}
	entries := rdb.XRange(ctx, StreamKey, "-", "+").Val()
	if len(entries) != 1 {
		t.Fatalf("stream entries: got %d, want 1", len(entries))
	}
	fromStream, err := Decode(stringValues(entries[0].Values))
	if err != nil {
		t.Fatalf("Decode(stream entry written by hand): %v", err)
	}
	if fromStream != s {
		t.Errorf("stream entry and hash differ:\n%+v\n%+v", fromStream, s)
	}
}

// TestDesignDebugCommands runs the design's debug commands against a
// Beater's heartbeat.
func TestDesignDebugCommands(t *testing.T) {
	f := newFixture(t, nil)
	f.start(t)

	out := f.srv.CLI(t, "", "HGETALL", "worker:heartbeat:worker-1")
	for _, want := range []string{"worker_id\nworker-1\n", "state\nIDLE\n", "timestamp\n1688851200.123\n", `"memory_mb":245.7`} {
		if !strings.Contains(out, want) {
			t.Errorf("HGETALL output lacks %q:\n%s", want, out)
		}
	}
	out = f.srv.CLI(t, "", "XREAD", "COUNT", "10", "STREAMS", "worker:status", "0")
	for _, want := range []string{"worker:status", "worker_id\nworker-1\n", "state\nIDLE\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("XREAD output lacks %q:\n%s", want, out)
		}
	}
}
