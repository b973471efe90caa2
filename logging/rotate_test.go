package logging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestFileConcurrentWritesAcrossRotations(t *testing.T) {
	const (
		goroutines = 8
		perG       = 1_000_000 / goroutines
		minRotated = 10
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
	var errOut reportBuffer
	// A line is about 20 bytes, so a million of them make about 20 MB:
	// 1 MiB files give about 20 rotations.
	f, err := OpenFile(path, RotateOptions{MaxSize: 1 << 20, MaxBackups: -1, ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			line := make([]byte, 0, 32)
			for n := range perG {
				line = appendLine(line[:0], g, n)
				if _, err := f.Write(line); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := errOut.String(); got != "" {
		t.Errorf("ErrorOutput = %q, want nothing", got)
	}

	archives, err := filepath.Glob(filepath.Join(dir, "logs", "archive", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(archives) < minRotated {
		t.Errorf("got %d archives, want at least %d", len(archives), minRotated)
	}
	var seen [goroutines][perG]uint8
	for _, name := range append(archives, path) {
		for line := range bytes.Lines(readLogFile(t, name)) {
			g, n, ok := parseLine(line)
			if !ok || g >= goroutines || n >= perG {
				t.Fatalf("%s: broken line %q", name, line)
			}
			seen[g][n]++
		}
	}
	for g := range seen {
		for n, count := range seen[g] {
			if count != 1 {
				t.Fatalf("line g=%d n=%d seen %d times, want 1", g, n, count)
			}
		}
	}
	t.Logf("%d lines in %d archives and the active file", goroutines*perG, len(archives))
}

func TestFileRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
	f, err := OpenFile(path, RotateOptions{MaxSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, record := range []string{
		"aaaa\n", "bbbb\n", // exactly MaxSize: no rotation yet
		"a record longer than MaxSize\n", // rotates, then goes whole into the new file
		"d\n",                            // rotates again
	} {
		if _, err := f.Write([]byte(record)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bot.jsonl.1.gz": "a record longer than MaxSize\n",
		"bot.jsonl.2.gz": "aaaa\nbbbb\n",
	}
	if got := archiveContents(t, filepath.Join(dir, "logs", "archive")); !maps.Equal(got, want) {
		t.Errorf("archives = %q, want %q", got, want)
	}
	if got, want := string(readLogFile(t, path)), "d\n"; got != want {
		t.Errorf("active file = %q, want %q", got, want)
	}
}

func TestFileRotateShiftsAndPrunes(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		opts     RotateOptions
		backdate bool // make record "a"'s archive two days old before the last rotation
		want     map[string]string
	}{
		{
			name: "newest is .1",
			want: map[string]string{"bot.jsonl.1.gz": "c\n", "bot.jsonl.2.gz": "b\n", "bot.jsonl.3.gz": "a\n"},
		},
		{
			name: "MaxBackups keeps the newest",
			opts: RotateOptions{MaxBackups: 2},
			want: map[string]string{"bot.jsonl.1.gz": "c\n", "bot.jsonl.2.gz": "b\n"},
		},
		{
			name:     "MaxAge deletes old archives",
			opts:     RotateOptions{MaxAge: 24 * time.Hour},
			backdate: true,
			want:     map[string]string{"bot.jsonl.1.gz": "c\n", "bot.jsonl.2.gz": "b\n"},
		},
		{
			name:     "negative MaxAge keeps old archives",
			opts:     RotateOptions{MaxAge: -1},
			backdate: true,
			want:     map[string]string{"bot.jsonl.1.gz": "c\n", "bot.jsonl.2.gz": "b\n", "bot.jsonl.3.gz": "a\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
			archiveDir := filepath.Join(dir, "logs", "archive")
			tt.opts.Now = func() time.Time { return now }

			// Closing waits for the compressor, so the archives exist
			// before the next step looks at them.
			writeAndRotate(t, path, tt.opts, "a\n", "b\n")
			if tt.backdate {
				old := now.Add(-48 * time.Hour)
				if err := os.Chtimes(filepath.Join(archiveDir, "bot.jsonl.2.gz"), old, old); err != nil {
					t.Fatal(err)
				}
			}
			writeAndRotate(t, path, tt.opts, "c\n")

			if got := archiveContents(t, archiveDir); !maps.Equal(got, tt.want) {
				t.Errorf("archives = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenFileUnwritableDirectory(t *testing.T) {
	// Tests run as root, which ignores permission bits; a regular file where
	// a directory should be fails for everyone.
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs", "bot"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts RotateOptions
		bad  string // the path the error must name
	}{
		{
			name: "log directory under a regular file",
			path: filepath.Join(regular, "bot", "bot.jsonl"),
			opts: RotateOptions{ArchiveDir: filepath.Join(dir, "archive")},
			bad:  filepath.Join(regular, "bot"),
		},
		{
			name: "archive directory under a regular file",
			path: filepath.Join(dir, "logs", "bot", "bot.jsonl"),
			opts: RotateOptions{ArchiveDir: filepath.Join(regular, "archive")},
			bad:  filepath.Join(regular, "archive"),
		},
		{
			name: "log path is a directory",
			path: filepath.Join(dir, "logs", "bot"),
			bad:  filepath.Join(dir, "logs", "bot"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := OpenFile(tt.path, tt.opts)
			if err == nil {
				f.Close()
				t.Fatal("OpenFile succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("error %q does not name %s", err, tt.bad)
			}
		})
	}
}

func TestOpenFileArchiveOnOtherFileSystem(t *testing.T) {
	other, err := os.MkdirTemp("/dev/shm", "botfleet-rotate-")
	if err != nil {
		t.Skipf("needs a tmpfs at /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	f, err := OpenFile(filepath.Join(t.TempDir(), "bot", "bot.jsonl"), RotateOptions{ArchiveDir: other})
	if err == nil {
		f.Close()
		t.Skip("/dev/shm is on the same file system as the test's temporary directory")
	}
	if !errors.Is(err, syscall.EXDEV) || !strings.Contains(err.Error(), other) {
		t.Errorf("OpenFile error = %v, want EXDEV naming %s", err, other)
	}
}

func TestFileReportsWriteErrorOnce(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("needs /dev/full to simulate a full disk")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", path); err != nil {
		t.Fatal(err)
	}
	var errOut reportBuffer
	f, err := OpenFile(path, RotateOptions{ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	for range 3 {
		if _, err := f.Write([]byte("lost\n")); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Write error = %v, want ENOSPC", err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], path) || !strings.Contains(lines[0], "no space left") {
		t.Fatalf("ErrorOutput = %q, want one line naming %s and the error", errOut.String(), path)
	}

	// The disk "has space again": the next Write reopens path as a regular file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("kept\n")); err != nil {
		t.Fatalf("Write after recovery: %v", err)
	}
	lines = strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "recovered after 3 failures") {
		t.Errorf("ErrorOutput = %q, want a second line saying it recovered", errOut.String())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := string(readLogFile(t, path)), "kept\n"; got != want {
		t.Errorf("active file = %q, want %q", got, want)
	}
}

func TestFileSurvivesRemovedDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
	var errOut reportBuffer
	f, err := OpenFile(path, RotateOptions{MaxSize: 10, ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatalf("Write(%q): %v", s, err)
		}
	}
	write("gone\n")
	if err := os.RemoveAll(filepath.Join(dir, "logs")); err != nil {
		t.Fatal(err)
	}
	write("after removal\n") // the rotation finds no file: reported, and a new one is created
	write("next\n")          // this rotation works
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], path) || !strings.Contains(lines[1], "recovered") {
		t.Errorf("ErrorOutput = %q, want one failure naming %s then one recovery", errOut.String(), path)
	}
	want := map[string]string{"bot.jsonl.1.gz": "after removal\n"}
	if got := archiveContents(t, filepath.Join(dir, "logs", "archive")); !maps.Equal(got, want) {
		t.Errorf("archives = %q, want %q", got, want)
	}
	if got, want := string(readLogFile(t, path)), "next\n"; got != want {
		t.Errorf("active file = %q, want %q", got, want)
	}
}

func TestFileReportsCompressionErrorOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
	archiveDir := filepath.Join(dir, "logs", "archive")
	// A directory where the compressor writes its temporary file makes
	// every compression fail until it is removed.
	blocker := filepath.Join(archiveDir, "bot.jsonl.gz.tmp")
	if err := os.MkdirAll(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	var errOut reportBuffer
	f, err := OpenFile(path, RotateOptions{ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rotate := func(record string) {
		t.Helper()
		if _, err := f.Write([]byte(record)); err != nil {
			t.Fatal(err)
		}
		if err := f.Rotate(); err != nil {
			t.Fatal(err)
		}
	}

	rotate("a\n")
	pollUntil(t, func() bool { return strings.Contains(errOut.String(), "compressing") })
	rotate("b\n")
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	rotate("c\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], path) || !strings.Contains(lines[1], "recovered") {
		t.Errorf("ErrorOutput = %q, want one failure naming %s then one recovery", errOut.String(), path)
	}
	// Nothing was lost while compression failed, and order was kept.
	want := map[string]string{"bot.jsonl.1.gz": "c\n", "bot.jsonl.2.gz": "b\n", "bot.jsonl.3.gz": "a\n"}
	if got := archiveContents(t, archiveDir); !maps.Equal(got, want) {
		t.Errorf("archives = %q, want %q", got, want)
	}
}

func TestOpenFileRecoversPending(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "bot", "bot.jsonl")
	archiveDir := filepath.Join(dir, "logs", "archive")
	if err := os.MkdirAll(archiveDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// What a process that crashed mid-compression leaves behind.
	leftovers := map[string]string{
		"bot.jsonl.1.gz":             "archived before\n",
		"bot.jsonl.100.pending":      "rotated first\n",
		"bot.jsonl.200.pending":      "rotated second\n",
		"bot.jsonl.gz.tmp":           "half a gzip stream",
		"worker-1.jsonl.150.pending": "another file's\n", // not ours to touch
	}
	for name, content := range leftovers {
		data := []byte(content)
		if strings.HasSuffix(name, ".gz") {
			data = gzipString(t, content)
		}
		if err := os.WriteFile(filepath.Join(archiveDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	f, err := OpenFile(path, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bot.jsonl.1.gz":             "rotated second\n",
		"bot.jsonl.2.gz":             "rotated first\n",
		"bot.jsonl.3.gz":             "archived before\n",
		"worker-1.jsonl.150.pending": "another file's\n",
	}
	if got := archiveContents(t, archiveDir); !maps.Equal(got, want) {
		t.Errorf("archives = %q, want %q", got, want)
	}
}

func TestFileAfterClose(t *testing.T) {
	f, err := OpenFile(filepath.Join(t.TempDir(), "logs", "bot", "bot.jsonl"), RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := f.Write([]byte("late\n")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := f.Rotate(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Rotate after Close = %v, want ErrClosed", err)
	}
}

func BenchmarkFileParallel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "logs", "bot", "bot.jsonl")
	f, err := OpenFile(path, RotateOptions{MaxSize: 8 << 20, MaxBackups: 3})
	if err != nil {
		b.Fatal(err)
	}
	// Close is timed: writing faster than the compressor keeps up with
	// would only pile up pending files.
	benchLines(b, f)
}

// benchLines writes unique lines to w from 8 goroutines, one Write per
// line, closes w inside the timing, and reports lines/s: the same loop for
// the rotating file and for its peer, a plain file.
func benchLines(b *testing.B, w io.WriteCloser) {
	// RunParallel starts parallelism × GOMAXPROCS goroutines; aim for 8.
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	var ids atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		g := int(ids.Add(1))
		line := make([]byte, 0, 32)
		for n := 0; pb.Next(); n++ {
			line = appendLine(line[:0], g, n)
			if _, err := w.Write(line); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// appendLine appends the unique record {"g":g,"n":n} and a newline.
func appendLine(buf []byte, g, n int) []byte {
	buf = append(buf, `{"g":`...)
	buf = strconv.AppendInt(buf, int64(g), 10)
	buf = append(buf, `,"n":`...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, "}\n"...)
}

// parseLine undoes appendLine, reporting false for anything else, such as
// a line cut short or two glued together.
func parseLine(line []byte) (g, n int, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"g":`))
	if !ok {
		return 0, 0, false
	}
	rest, ok = bytes.CutSuffix(rest, []byte("}\n"))
	if !ok {
		return 0, 0, false
	}
	gs, ns, ok := bytes.Cut(rest, []byte(`,"n":`))
	if !ok {
		return 0, 0, false
	}
	g, errG := strconv.Atoi(string(gs))
	n, errN := strconv.Atoi(string(ns))
	return g, n, errG == nil && errN == nil && g >= 0 && n >= 0
}

// writeAndRotate opens path, writes and rotates away each record, and
// closes it, which waits for compression.
func writeAndRotate(t *testing.T, path string, opts RotateOptions, records ...string) {
	t.Helper()
	f, err := OpenFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if _, err := f.Write([]byte(r)); err != nil {
			t.Fatal(err)
		}
		if err := f.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// archiveContents maps each file in dir to its content, decompressed if
// its name ends in .gz.
func archiveContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, e := range entries {
		got[e.Name()] = string(readLogFile(t, filepath.Join(dir, e.Name())))
	}
	return got
}

// readLogFile returns a log file's content, decompressed if its name ends in .gz.
func readLogFile(t *testing.T, path string) []byte {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var r io.Reader = bufio.NewReader(file)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

func gzipString(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pollUntil checks cond every millisecond until it holds, failing the test
// after a deadline, so background work gets no fixed time to finish in.
func pollUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// reportBuffer is a bytes.Buffer safe for the concurrent writes ErrorOutput
// may get.
type reportBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *reportBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *reportBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
