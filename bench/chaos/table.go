package main

import (
	"fmt"
	"io"
)

// printRow prints a scenario's line as soon as it is judged, with its
// notes and at most max of its problems.
func printRow(w io.Writer, r row, max int) {
	fmt.Fprintf(w, "%-14s submitted %d / accepted %d / refused %d / succeeded %d / failed %d / lost %d / duplicated %d (%d mid-run on a killed worker) / answered wrongly %d\n",
		r.name, r.submitted, r.accepted, r.refused, r.succeeded, r.failed, r.lost, r.duplicated, r.dupKilled, r.wrong)
	fmt.Fprintf(w, "%-14s   unknown answers %d, no answer %d, queued by an unknown or unanswered request (replayed) %d, lookups after unknown %d (untrue %d), never accepted %d, slowest answer %.2fs\n",
		"", r.unknowns, r.noAnswers, r.replays, r.lookups, r.lookupsWrong, r.gaveUp, r.slowest.Seconds())
	for _, n := range r.notes {
		fmt.Fprintf(w, "%-14s   %s\n", "", n)
	}
	for i, p := range r.problems {
		if i == max {
			fmt.Fprintf(w, "%-14s   ... %d more problems\n", "", len(r.problems)-max)
			break
		}
		fmt.Fprintf(w, "%-14s   PROBLEM %s\n", "", p)
	}
}

// printTable prints the rows as the Markdown table docs/reliability.md
// keeps.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | submitted | accepted | refused (429/503 answers) | succeeded | failed | lost | duplicated (mid-run on killed worker) | answered wrongly | unknown answers | slowest answer |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d (%d) | %d | %d | %.2fs |\n",
			r.name, r.submitted, r.accepted, r.refused, r.succeeded, r.failed, r.lost, r.duplicated, r.dupKilled, r.wrong, r.unknowns, r.slowest.Seconds())
	}
}
