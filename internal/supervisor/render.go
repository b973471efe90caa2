package supervisor

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// contextKeys are left out of the rendered line: the prefix already says
// which process wrote it, and they are the same on every line.
var contextKeys = map[string]bool{
	"timestamp": true, "levelname": true, "message": true, "service": false, "worker_id": true,
	"hostname": true, "container_id": true, "deployment_env": true, "region": true, "logger": false,
}

var levelColor = map[string]string{
	"DEBUG": "\x1b[90m", "INFO": "\x1b[32m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m",
}

// Render turns one JSON log record into a short human line: time, level,
// message, then the fields that differ from line to line (job_id first).
// A line that is not a JSON object is returned as it is, with control
// characters escaped.
func Render(line []byte, color bool) string {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil || m["message"] == nil {
		return escape(string(line))
	}
	var b strings.Builder
	if ts, ok := m["timestamp"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			b.WriteString(t.Local().Format("15:04:05.000 "))
		}
	}
	lvl, _ := m["levelname"].(string)
	if color {
		fmt.Fprintf(&b, "%s%-8s\x1b[0m ", levelColor[lvl], lvl)
	} else {
		fmt.Fprintf(&b, "%-8s ", lvl)
	}
	b.WriteString(escape(fmt.Sprint(m["message"])))
	keys := make([]string, 0, len(m))
	for k := range m {
		if !contextKeys[k] && k != "message" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "job_id") != (keys[j] == "job_id") {
			return keys[i] == "job_id"
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		if k == "service" && (m[k] == "worker" || m[k] == "bot") {
			continue // implied by the prefix; other services (web_frontend) are worth showing
		}
		v := m[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
		default:
			j, _ := json.Marshal(x)
			s = string(j)
		}
		s = escape(s)
		if strings.ContainsAny(s, " =\"") {
			s = fmt.Sprintf("%q", s)
		}
		if color {
			fmt.Fprintf(&b, " \x1b[2m%s=\x1b[0m%s", k, s)
		} else {
			fmt.Fprintf(&b, " %s=%s", k, s)
		}
	}
	return b.String()
}

// escape writes control characters as Go escapes, so a child's output
// cannot move the terminal's cursor or forge a line.
func escape(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
