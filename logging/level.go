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
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l < LevelCritical:
		return "ERROR"
	default:
		return "CRITICAL"
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
