package fleet

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ANSI colours of the table's rows.
const (
	colorStale   = "\x1b[33m" // yellow
	colorInvalid = "\x1b[31m" // red
	colorReset   = "\x1b[0m"
)

// maxJobWidth bounds the CURRENT JOB column: several job ids would push the
// LAST BEAT column off the screen.
const maxJobWidth = 32

var tableHeader = []string{"WORKER", "SERVICE", "STATE", "HEALTH", "HOST", "REGION", "UPTIME", "MEM", "CPU%", "DONE/FAILED", "CURRENT JOB", "LAST BEAT"}

// WriteTable writes the fleet as a table, one row per worker, then the
// summary line ("3 workers: 2 alive (1 IDLE, 1 BUSY), 1 stale, 0 invalid")
// and the reason of each invalid heartbeat. With color, stale rows are
// yellow and invalid ones red. It writes everything in one Write.
func WriteTable(w io.Writer, f Fleet, color bool) error {
	var b bytes.Buffer
	if len(f.Workers) > 0 {
		rows := [][]string{tableHeader}
		for _, wk := range f.Workers {
			rows = append(rows, tableRow(wk))
		}
		widths := columnWidths(rows)
		for i, row := range rows {
			on := ""
			if color && i > 0 {
				on = map[string]string{Stale: colorStale, Invalid: colorInvalid}[f.Workers[i-1].Health]
			}
			writeRow(&b, row, widths, on)
		}
		b.WriteByte('\n')
	}
	b.WriteString(SummaryLine(f.Summary))
	b.WriteByte('\n')
	for _, wk := range f.Workers {
		if wk.Health == Invalid {
			fmt.Fprintf(&b, "invalid heartbeat of %s: %s\n", wk.WorkerID, wk.Error)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// SummaryLine counts the fleet in words: "3 workers: 2 alive (1 IDLE, 1
// BUSY), 1 stale, 0 invalid". Only the states some alive worker is in are
// named.
func SummaryLine(s Summary) string {
	noun := "workers"
	if s.Total == 1 {
		noun = "worker"
	}
	var counts []string
	for _, st := range States {
		if n := s.ByState[st]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st))
		}
	}
	alive := strconv.Itoa(s.Alive) + " alive"
	if len(counts) > 0 {
		alive += " (" + strings.Join(counts, ", ") + ")"
	}
	return fmt.Sprintf("%d %s: %s, %d stale, %d invalid", s.Total, noun, alive, s.Stale, s.Invalid)
}

func tableRow(w Worker) []string {
	if w.Health == Invalid {
		return []string{Printable(w.WorkerID), "-", "-", Invalid, "-", "-", "-", "-", "-", "-", "-", "-"}
	}
	return printableAll([]string{
		w.WorkerID, dash(w.Service), stateText(w), w.Health, dash(w.Hostname), dash(w.Region),
		uptime(w.Uptime),
		fmt.Sprintf("%.0fM", w.Resources.MemoryMB),
		fmt.Sprintf("%.1f", w.Resources.CPUPercent),
		fmt.Sprintf("%d/%d", w.JobsProcessed, w.JobsFailed),
		dash(truncate(w.CurrentJob, maxJobWidth)),
		lastBeat(w),
	})
}

// Printable returns s with the characters that would act on a terminal
// rather than show (control characters such as ESC, and the bidirectional
// overrides that reorder text) written as Go escapes, "\x1b[2J" for
// ESC [ 2 J: heartbeat fields come from any writer and must not reach an
// operator's terminal as commands.
func Printable(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !unsafeRune(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r) // '\x1b', '\u202e'
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == utf8.RuneError || 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069 || r == 0x200e || r == 0x200f
}

func printableAll(cells []string) []string {
	for i, c := range cells {
		cells[i] = Printable(c)
	}
	return cells
}

// lastBeat is the beat's age, and the worker's clock skew when it has one.
func lastBeat(w Worker) string {
	s := formatDuration(w.LastBeatAge) + " ago"
	if w.ClockSkew > 0 {
		s += " (clock +" + formatDuration(w.ClockSkew) + ")"
	}
	return s
}

func columnWidths(rows [][]string) []int {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	return widths
}

// writeRow pads each cell but the last to its column's width; color, when
// set, wraps the whole row.
func writeRow(b *bytes.Buffer, row []string, widths []int, color string) {
	b.WriteString(color)
	for i, cell := range row {
		b.WriteString(cell)
		if i < len(row)-1 {
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
		}
	}
	if color != "" {
		b.WriteString(colorReset)
	}
	b.WriteByte('\n')
}

// formatDuration writes d for people, to two units at most: "850ms",
// "4.2s", "12m03s", "3h04m", "2d05h".
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// uptime is "-" when the worker did not say when it started.
func uptime(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return formatDuration(d)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WritePage writes a page of the fleet as WriteTable writes the fleet (the
// summary line counts the whole fleet), then, when another page follows,
// the cursor to ask for it.
func WritePage(w io.Writer, p Page, color bool) error {
	if err := WriteTable(w, Fleet{GeneratedAt: p.GeneratedAt, Summary: p.Summary, Workers: p.Workers}, color); err != nil {
		return err
	}
	if p.Next == "" {
		return nil
	}
	_, err := fmt.Fprintf(w, "more workers: -cursor %s\n", p.Next)
	return err
}

// stateText is the worker's state, marked when it is quiet.
func stateText(w Worker) string {
	if w.Quiet {
		return w.State + " (quiet)"
	}
	return w.State
}
