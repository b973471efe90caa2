package logging

import (
	"fmt"
	"log/slog"
	"strings"
)

// LevelCritical is the level above slog.LevelError, written as CRITICAL: the
// design's Python levels are DEBUG, INFO, WARNING, ERROR and CRITICAL.
const LevelCritical = slog.Level(12)

// LevelName returns the name a record at level l carries in its levelname
// field. Levels between the named ones round down (INFO+2 is INFO), so the
// field only ever holds the five names that log pipelines filter on.
func LevelName(l slog.Level) string { return levelNames[levelIndex(l)] }

// levelNames are the five names, indexed by levelIndex.
var levelNames = [5]string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}

// levelIndex is the bucket of l among the five names: the one place that
// decides how levels round.
func levelIndex(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 0
	case l < slog.LevelWarn:
		return 1
	case l < slog.LevelError:
		return 2
	case l < LevelCritical:
		return 3
	default:
		return 4
	}
}

// ParseLevel reads a level name, case-insensitively: DEBUG, INFO, WARNING
// (or WARN), ERROR, CRITICAL.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "CRITICAL":
		return LevelCritical, nil
	}
	return 0, fmt.Errorf("%q: want one of DEBUG, INFO, WARNING, ERROR, CRITICAL", s)
}
