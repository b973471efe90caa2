package logging

import (
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RotateOptions configure a File. The zero value gives the default documented
// on each field.
type RotateOptions struct {
	// MaxSize is how many bytes the active file may hold before it is rotated.
	// 0 means 100 MiB.
	MaxSize int64

	// MaxBackups is how many compressed archives are kept per file.
	// 0 means 10; a negative value keeps them all.
	MaxBackups int

	// MaxAge is how old an archive may get, by modification time (the time of
	// its last record), before it is deleted. 0 means 30 days; a negative
	// value never deletes by age.
	MaxAge time.Duration

	// ArchiveDir is where rotated files go. "" means a directory "archive"
	// beside the file's own directory: logs/archive for logs/bot/bot.jsonl.
	// It must be on the same file system as the file, because rotation is a
	// rename.
	ArchiveDir string

	// Now is the clock used to name rotated files and to age archives.
	// nil means time.Now.
	Now func() time.Time

	// ErrorOutput receives one line when writing, rotating or compressing
	// starts to fail and one when it recovers. nil means os.Stderr.
	ErrorOutput io.Writer
}

const (
	defaultMaxSize    = 100 << 20
	defaultMaxBackups = 10
	defaultMaxAge     = 30 * 24 * time.Hour
)

func (o RotateOptions) withDefaults(path string) RotateOptions {
	if o.MaxSize == 0 {
		o.MaxSize = defaultMaxSize
	}
	if o.MaxBackups == 0 {
		o.MaxBackups = defaultMaxBackups
	}
	if o.MaxAge == 0 {
		o.MaxAge = defaultMaxAge
	}
	if o.ArchiveDir == "" {
		o.ArchiveDir = filepath.Join(filepath.Dir(path), "..", "archive")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ErrorOutput == nil {
		o.ErrorOutput = os.Stderr
	}
	return o
}

// File is an append-only log file that rotates itself by size into gzipped
// archives named <ArchiveDir>/<name>.1.gz (newest), <name>.2.gz, and so on.
//
// Each Write must carry whole records (one or more complete lines); a Write
// is never split across files. Writes are unbuffered, so a crash loses
// nothing already written. Compression runs in a background goroutine, off
// the write path. Create one with OpenFile. A File is safe for concurrent use.
type File struct {
	path string
	base string        // file name, the prefix of its archives
	opts RotateOptions // defaults filled in

	// mu serialises writes and rotation, so records never interleave and a
	// record never straddles a rotation.
	mu       sync.Mutex
	file     *os.File // nil after a failure; the next Write reopens path
	size     int64
	lastNano int64 // suffix of the newest pending file; only ever grows, so names never collide
	closed   bool
	// torn is set when a write stopped partway through a record (a full
	// disk): the next record then starts with a newline, so the fragment
	// spoils only itself and not the record after it.
	torn      bool
	writeFile func(*os.File, []byte) (int, error) // (*os.File).Write; tests make it fail partway
	writes    streak
	rotations streak

	wake         chan struct{} // holds at most one "pending work" signal; closed by Close
	done         chan struct{} // closed when the compressor has exited
	compressions streak        // owned by the compressor goroutine
	compressErr  error         // the compressor's last result; read by Close after done
	errOut       lockedWriter
}

// OpenFile opens path for appending, creating it and its directory
// (mode 0o644 and 0o755) if needed. It also checks that the archive directory
// can be created and written and is on the same file system, so a
// misconfiguration fails at startup, naming the path, rather than at the
// first rotation. Rotated files left pending by a crashed process are
// compressed in the background.
func OpenFile(path string, opts RotateOptions) (*File, error) {
	opts = opts.withDefaults(path)
	f := &File{
		path: path,
		base: filepath.Base(path),
		opts: opts,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),

		writeFile: (*os.File).Write,
	}
	f.errOut.w = opts.ErrorOutput
	f.writes = streak{out: &f.errOut, op: "writing", path: path}
	f.rotations = streak{out: &f.errOut, op: "rotating", path: path}
	f.compressions = streak{out: &f.errOut, op: "compressing archives of", path: path}

	if err := f.openActive(); err != nil {
		return nil, fmt.Errorf("logging: open %s: %w", path, err)
	}
	pending, err := f.list(".pending")
	if err == nil {
		err = checkArchiveDir(path, opts.ArchiveDir)
	}
	if err != nil {
		f.file.Close()
		return nil, fmt.Errorf("logging: %s: archive directory %s: %w", path, opts.ArchiveDir, err)
	}
	if len(pending) > 0 {
		f.lastNano = pending[len(pending)-1].n
	}
	go f.compressLoop()
	f.wake <- struct{}{} // archive any leftovers, and prune by age
	return f, nil
}

// checkArchiveDir creates dir and renames a probe file into it from beside
// the log file. That proves dir writable, which permission bits alone would
// not (root ignores them; a read-only mount ignores root), and on the same
// file system, which rotation needs because it is a rename.
func checkArchiveDir(path, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	probe, err := os.CreateTemp(filepath.Dir(path), ".probe-*")
	if err != nil {
		return err
	}
	probe.Close()
	moved := filepath.Join(dir, filepath.Base(probe.Name()))
	if err := os.Rename(probe.Name(), moved); err != nil {
		os.Remove(probe.Name())
		return err
	}
	return os.Remove(moved)
}

// openActive (re)opens the active file. It recreates the directory because
// someone may have removed it; a log should come back rather than fail forever.
func (f *File) openActive() error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	file, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return err
	}
	f.file, f.size = file, info.Size()
	return nil
}

// Write appends p, which must be one or more whole lines, as a single
// write(2). If p would take a non-empty file past MaxSize, the file is
// rotated first. Write returns an error only if p was not (wholly) written:
// a failed rotation is reported to ErrorOutput and p goes to the current file.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: fs.ErrClosed}
	}
	if f.file != nil && f.size > 0 && f.size+int64(len(p)) > f.opts.MaxSize {
		f.rotations.observe(f.rotate())
	}
	if f.file == nil {
		if err := f.openActive(); err != nil {
			f.writes.observe(err)
			return 0, err
		}
	}
	rec := p
	if f.torn {
		rec = append([]byte{'\n'}, p...) // rare: only after a torn write
	}
	n, err := f.writeFile(f.file, rec)
	f.size += int64(n)
	switch {
	case n == len(rec):
		f.torn = false
	case n > 0: // part of the record is in the file, without its newline
		f.torn = true
	}
	if len(rec) > len(p) {
		n = max(n-1, 0) // the newline was ours, not the caller's
	}
	if err != nil {
		// The descriptor itself may be what broke (file replaced, stale
		// handle); reopening the path on the next Write lets logging recover
		// without a restart.
		f.file.Close()
		f.file = nil
	}
	f.writes.observe(err)
	return n, err
}

// Rotate moves the active file to the archive now, for example on SIGHUP.
// An empty file is left alone, so repeated signals do not fill the archive
// with empty files.
func (f *File) Rotate() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "rotate", Path: f.path, Err: fs.ErrClosed}
	}
	err := f.rotate()
	f.rotations.observe(err)
	return err
}

// rotate renames the active file to a uniquely named pending file and opens
// a fresh one. That is all the write path pays for; the compressor does the
// rest. The caller holds f.mu.
func (f *File) rotate() error {
	if f.file == nil {
		return f.openActive()
	}
	if f.size == 0 {
		return nil
	}
	nano := max(f.opts.Now().UnixNano(), f.lastNano+1)
	pending := filepath.Join(f.opts.ArchiveDir, f.base+"."+strconv.FormatInt(nano, 10)+".pending")
	if err := os.MkdirAll(f.opts.ArchiveDir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(f.path, pending); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Someone removed the file or its directory under us. What was
			// written since went with it, but a new file lets logging go on;
			// the error still reports the loss.
			f.file.Close()
			f.file = nil
			return errors.Join(err, f.openActive())
		}
		return err
	}
	f.lastNano = nano
	f.torn = false // the fragment went to the archive; the new file starts clean
	closeErr := f.file.Close()
	f.file = nil
	select {
	case f.wake <- struct{}{}:
	default: // a wake-up is already queued, and it will see this file too
	}
	return errors.Join(closeErr, f.openActive())
}

// Sync commits the active file to stable storage.
func (f *File) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "sync", Path: f.path, Err: fs.ErrClosed}
	}
	if f.file == nil {
		return nil
	}
	return f.file.Sync()
}

// Close syncs and closes the active file, then waits for the compressor to
// archive every pending file. Calling Close again returns nil.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		<-f.done
		return nil
	}
	f.closed = true
	var err error
	if f.file != nil {
		err = errors.Join(f.file.Sync(), f.file.Close())
		f.file = nil
	}
	close(f.wake)
	f.mu.Unlock()
	<-f.done
	return errors.Join(err, f.compressErr)
}

// compressLoop archives pending files in the background. A single goroutine
// per File keeps archives numbered in rotation order.
func (f *File) compressLoop() {
	defer close(f.done)
	for range f.wake {
		f.compressErr = f.archivePending()
		f.compressions.observe(f.compressErr)
	}
}

// archivePending archives every pending file, oldest first, then prunes by
// age. It stops at the first failure, leaving that file pending for the next
// wake-up, so a newer rotation never gets an older archive number.
func (f *File) archivePending() error {
	pending, err := f.list(".pending")
	if err != nil {
		return err
	}
	for _, p := range pending {
		if err := f.archive(p.path); err != nil {
			return err
		}
	}
	return f.pruneByAge()
}

// archive compresses one pending file into <base>.1.gz, shifting the older
// archives up. The pending file is removed last: a crash in between leaves
// a duplicate archive, never a lost one.
func (f *File) archive(pending string) error {
	tmp := filepath.Join(f.opts.ArchiveDir, f.base+".gz.tmp")
	if err := compress(pending, tmp); err != nil {
		return err
	}
	if err := f.shift(); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.archivePath(1)); err != nil {
		return err
	}
	return os.Remove(pending)
}

// shift renames archive n to n+1, highest first so nothing is overwritten,
// and deletes those that would go past MaxBackups.
func (f *File) shift() error {
	archives, err := f.list(".gz")
	if err != nil {
		return err
	}
	for _, a := range slices.Backward(archives) {
		if f.opts.MaxBackups >= 0 && a.n >= int64(f.opts.MaxBackups) {
			err = os.Remove(a.path)
		} else {
			err = os.Rename(a.path, f.archivePath(a.n+1))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *File) pruneByAge() error {
	if f.opts.MaxAge < 0 {
		return nil
	}
	archives, err := f.list(".gz")
	if err != nil {
		return err
	}
	cutoff := f.opts.Now().Add(-f.opts.MaxAge)
	var errs []error
	for _, a := range archives {
		info, err := os.Stat(a.path)
		if err == nil && info.ModTime().Before(cutoff) {
			err = os.Remove(a.path)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (f *File) archivePath(n int64) string {
	return filepath.Join(f.opts.ArchiveDir, f.base+"."+strconv.FormatInt(n, 10)+".gz")
}

// archived is a file in the archive directory named <base>.<n><suffix>.
type archived struct {
	n    int64
	path string
}

// list returns this file's archived entries with the given suffix, by n
// ascending. Other files sharing the directory are ignored.
func (f *File) list(suffix string) ([]archived, error) {
	entries, err := os.ReadDir(f.opts.ArchiveDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed under us: nothing to archive; rotate recreates it
	}
	if err != nil {
		return nil, err
	}
	var out []archived
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), f.base+".")
		if !ok {
			continue
		}
		digits, ok := strings.CutSuffix(rest, suffix)
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(digits, 10, 64); err == nil && n > 0 {
			out = append(out, archived{n: n, path: filepath.Join(f.opts.ArchiveDir, e.Name())})
		}
	}
	slices.SortFunc(out, func(a, b archived) int { return cmp.Compare(a.n, b.n) })
	return out, nil
}

// compress gzips src into dst and syncs it, so src can then be removed
// safely. dst gets src's modification time, so MaxAge counts from the last
// record rather than from when compression happened to run.
func compress(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err = errors.Join(err, zw.Close(), out.Sync(), out.Close()); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// streak reports the first failure of a run and the success that ends it, so
// a full disk costs two lines on ErrorOutput rather than one per record.
type streak struct {
	out      *lockedWriter
	op, path string
	failures int
}

func (s *streak) observe(err error) {
	switch {
	case err != nil:
		if s.failures == 0 {
			s.out.printf("logging: %s %s failed: %v (not reported again until it recovers)\n", s.op, s.path, err)
		}
		s.failures++
	case s.failures > 0:
		s.out.printf("logging: %s %s recovered after %d failures\n", s.op, s.path, s.failures)
		s.failures = 0
	}
}

// lockedWriter lets the write path and the compressor share ErrorOutput,
// which need not be safe for concurrent use.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
