package fleet

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// How much of the history WriteInspect shows.
const (
	inspectChanges = 10 // state changes
	inspectPoints  = 10 // rows of the resource table
)

// WriteInspect writes one worker in full: every heartbeat field and the
// reader's judgement, then, from history (oldest first, as History returns
// it), its recent state changes and its memory and CPU over time. It
// writes everything in one Write.
func WriteInspect(w io.Writer, wk Worker, history []Point) error {
	var b bytes.Buffer
	writeFields(&b, inspectFields(wk))
	b.WriteString("\nRecent state changes:\n")
	changes := stateChanges(history)
	if len(changes) == 0 {
		b.WriteString("  (no history in the stream)\n")
	}
	for _, p := range changes[max(0, len(changes)-inspectChanges):] {
		fmt.Fprintf(&b, "  %s  %s\n", formatTime(p.Timestamp), p.State)
	}
	if len(history) > 0 {
		writeResources(&b, history)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func inspectFields(w Worker) [][2]string {
	if w.Health == Invalid {
		return [][2]string{{"Worker", w.WorkerID}, {"Health", Invalid}, {"Error", w.Error}}
	}
	health := fmt.Sprintf("%s (last beat %s, interval %s)", w.Health, lastBeat(w), formatDuration(w.Interval))
	started := "-"
	if !w.StartedAt.IsZero() {
		started = fmt.Sprintf("%s (uptime %s)", formatTime(w.StartedAt), formatDuration(w.Uptime))
	}
	r, s := w.Resources, w.System
	return [][2]string{
		{"Worker", w.WorkerID},
		{"State", w.State},
		{"Health", health},
		{"Beat at", formatTime(w.Timestamp) + " (the worker's clock)"},
		{"Service", dash(w.Service)},
		{"Version", dash(w.Version)},
		{"Host", dash(w.Hostname)},
		{"Container", dash(w.ContainerID)},
		{"Environment", dash(w.DeploymentEnv)},
		{"Region", dash(w.Region)},
		{"Started", started},
		{"Jobs", fmt.Sprintf("%d done, %d failed", w.JobsProcessed, w.JobsFailed)},
		{"Current job", dash(w.CurrentJob)},
		{"Quiet", quietText(w.Quiet)},
		{"Metrics", dash(w.MetricsURL)},
		{"Resources", fmt.Sprintf("memory %.1f MiB (%.1f%%), CPU %.1f%%, %d threads, %d open files",
			r.MemoryMB, r.MemoryPercent, r.CPUPercent, r.NumThreads, r.OpenFiles)},
		{"System", fmt.Sprintf("%s, %s, %s, pid %d", dash(s.Hostname), dash(s.Platform), dash(s.GoVersion), s.PID)},
	}
}

func writeFields(b *bytes.Buffer, fields [][2]string) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f[0])+1)
	}
	for _, f := range fields {
		fmt.Fprintf(b, "%-*s  %s\n", width, f[0]+":", Printable(f[1]))
	}
}

// stateChanges returns the first point and each point whose state differs
// from the one before.
func stateChanges(history []Point) []Point {
	var changes []Point
	for i, p := range history {
		if i == 0 || p.State != history[i-1].State {
			changes = append(changes, p)
		}
	}
	return changes
}

func writeResources(b *bytes.Buffer, history []Point) {
	mem := make([]float64, len(history))
	cpu := make([]float64, len(history))
	for i, p := range history {
		mem[i], cpu[i] = p.MemoryMB, p.CPUPercent
	}
	fmt.Fprintf(b, "\nResources over the last %d beats:\n", len(history))
	fmt.Fprintf(b, "  memory  %s  %s MiB\n", sparkline(mem), span(mem))
	fmt.Fprintf(b, "  CPU     %s  %s %%\n", sparkline(cpu), span(cpu))
	rows := [][]string{{"TIME", "STATE", "MEM", "CPU%", "DONE/FAILED"}}
	for _, p := range history[max(0, len(history)-inspectPoints):] {
		rows = append(rows, []string{formatTime(p.Timestamp), p.State, fmt.Sprintf("%.1fM", p.MemoryMB),
			fmt.Sprintf("%.1f", p.CPUPercent), fmt.Sprintf("%d/%d", p.JobsProcessed, p.JobsFailed)})
	}
	b.WriteByte('\n')
	widths := columnWidths(rows)
	for _, row := range rows {
		b.WriteString("  ")
		writeRow(b, row, widths, "")
	}
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws vs scaled between their minimum and maximum.
func sparkline(vs []float64) string {
	lo, hi := bounds(vs)
	var s strings.Builder
	for _, v := range vs {
		i := 0
		if hi > lo {
			i = int(math.Round((v - lo) / (hi - lo) * float64(len(sparks)-1)))
		}
		s.WriteRune(sparks[i])
	}
	return s.String()
}

func span(vs []float64) string {
	lo, hi := bounds(vs)
	return fmt.Sprintf("%.1f–%.1f", lo, hi)
}

func bounds(vs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// formatTime writes t in UTC to the millisecond, the precision of a beat.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func quietText(q bool) string {
	if q {
		return "yes: finishing its jobs, taking no new ones"
	}
	return "no"
}
