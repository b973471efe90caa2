package logging

import (
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lmittmann/tint"
)

// NewPrettyHandler returns the human form of botfleet's records, for a
// developer's terminal: time, a coloured level, the message, then the bound
// context and the attributes as key=value. It colours only when w is a
// terminal and NO_COLOR is unset. Control characters in messages, keys and
// values are escaped, so no input can forge a line or move the cursor.
// Secrets are masked as in the JSON form. nil opts means the defaults.
func NewPrettyHandler(w io.Writer, opts *HandlerOptions) slog.Handler {
	return newPrettyHandler(w, opts, isTerminal(w) && os.Getenv("NO_COLOR") == "")
}

func newPrettyHandler(w io.Writer, opts *HandlerOptions, color bool) slog.Handler {
	if opts == nil {
		opts = &HandlerOptions{}
	}
	t := tint.NewHandler(w, &tint.Options{
		Level:       slog.LevelDebug, // the ContextHandler filters
		AddSource:   opts.AddSource,
		TimeFormat:  "15:04:05.000",
		NoColor:     !color,
		ReplaceAttr: prettyReplace,
	})
	return NewContextHandler(t, opts)
}

// prettyReplace names the CRITICAL level and escapes control characters,
// which tint would otherwise pass through in messages and coloured values.
func prettyReplace(_ []string, a slog.Attr) slog.Attr {
	a.Key = escapeControl(a.Key)
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(escapeControl(a.Value.String()))
	case slog.KindAny:
		if l, ok := a.Value.Any().(slog.Level); ok && a.Key == slog.LevelKey && l >= LevelCritical {
			a.Value = slog.StringValue("CRT")
		}
	case slog.KindTime:
		a.Value = slog.TimeValue(a.Value.Time().Local().Round(time.Millisecond))
	}
	return a
}

// escapeControl returns s with control characters, invalid UTF-8 and line
// separators written as Go escapes (\n, \x1b, \u2028), and s itself when it
// holds none.
func escapeControl(s string) string {
	for i, r := range s {
		if unsafeRune(r) {
			buf := []byte(s[:i])
			for _, r := range s[i:] {
				if unsafeRune(r) {
					q := strconv.QuoteRuneToASCII(r)
					buf = append(buf, q[1:len(q)-1]...)
					continue
				}
				buf = utf8.AppendRune(buf, r)
			}
			return string(buf)
		}
	}
	return s
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	return r < ' ' || r == 0x7f || r == utf8.RuneError || r == '\u2028' || r == '\u2029' || (r >= 0x80 && unicode.IsControl(r))
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
