package logging

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A disk that fills in the middle of a record leaves a fragment in the
// file. It must spoil only itself: the next record starts on a line of its
// own, whole.
func TestTornWriteDoesNotSpoilTheNextRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "workers", "worker-1.jsonl")
	var errOut bytes.Buffer
	f, err := OpenFile(path, RotateOptions{ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		record string
		tear   bool // the disk fills halfway through this record
	}{
		{`{"n":1}` + "\n", false},
		{`{"n":2,"message":"the disk fills here"}` + "\n", true},
		{`{"n":3}` + "\n", false},
		{`{"n":4}` + "\n", false},
	}
	for _, tt := range tests {
		if tt.tear {
			f.writeFile = func(fh *os.File, p []byte) (int, error) {
				n, _ := fh.Write(p[:len(p)/2])
				return n, syscall.ENOSPC
			}
		}
		n, err := f.Write([]byte(tt.record))
		f.writeFile = (*os.File).Write
		if tt.tear {
			if err == nil || n >= len(tt.record) {
				t.Fatalf("torn write: n=%d err=%v, want a short write and an error", n, err)
			}
			continue
		}
		if err != nil || n != len(tt.record) {
			t.Fatalf("write %q: n=%d err=%v", tt.record, n, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	want := []string{`{"n":1}`, `{"n":2,"message":"th`, `{"n":3}`, `{"n":4}`}
	if len(lines) != len(want) {
		t.Fatalf("file holds %d lines, want %d:\n%s", len(lines), len(want), b)
	}
	for i, w := range want {
		if string(lines[i]) != w {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	if bytes.Count(errOut.Bytes(), []byte("\n")) > 2 {
		t.Errorf("the failure was reported more than once (plus recovery):\n%s", errOut.String())
	}
}
