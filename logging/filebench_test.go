package logging

import (
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
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
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	var ids atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		g := int(ids.Add(1))
		line := make([]byte, 0, 32)
		for n := 0; pb.Next(); n++ {
			line = appendLine(line[:0], g, n)
			if _, err := f.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
