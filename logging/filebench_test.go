package logging

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOSFileParallel is BenchmarkFileParallel's peer: the same 8
// goroutines writing the same lines, one Write each, to a plain *os.File
// opened O_APPEND, with no rotation and no archive. The two together show
// what rotation costs; run them in one go with
//
//	go test -run '^$' -bench 'FileParallel$' ./logging
func BenchmarkOSFileParallel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bot.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	benchLines(b, f)
}
