package logging

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// HandlerOptions configures a JSONHandler. The zero value, like a nil
// *HandlerOptions, means: level INFO, no source, the default secret keys.
type HandlerOptions struct {
	// Level is the minimum level written; nil means slog.LevelInfo. A
	// *slog.LevelVar changes it while the program runs.
	Level slog.Leveler
	// AddSource adds a "source" field, file:line of the logging call.
	AddSource bool
	// RedactKeys are attribute keys to hide besides DefaultSecretKeys
	// (the LOG_REDACT_KEYS variable).
	RedactKeys []string
}

// JSONHandler is a slog.Handler that writes botfleet's JSON records, one
// object per line: timestamp, levelname, logger, message, the context fields
// (service, worker_id, job_id, hostname, container_id, deployment_env,
// region) when bound, source when enabled, then the record's own attributes
// with groups as nested objects. Secrets are masked (see Redactor).
//
// Bound attributes, whether bound with Handler.WithAttrs, Bind or With, are
// encoded once and reused; a record is one Write to the underlying writer.
// A JSONHandler and the handlers derived from it are safe for concurrent use
// and share one lock around the writer.
type JSONHandler struct {
	c      *core
	slots  [numSlots + 1][]byte // context fields bound with WithAttrs, encoded
	merged *mergedCache         // slots merged with the process-wide ones
	pre    []byte               // other attributes bound with WithAttrs, encoded
	groups []string             // groups opened by WithGroup
	nOpen  int                  // how many of groups pre has opened
}

// core is what a handler and its derivatives share.
type core struct {
	mu        sync.Mutex
	w         io.Writer
	level     slog.Leveler
	addSource bool
	red       *Redactor
	keys      [256]atomic.Pointer[keyEntry]
}

// keyEntry is an attribute key encoded once: attribute keys are nearly
// always constants, so checking and escaping each on every record is waste.
type keyEntry struct {
	key    string
	word   uint64 // keyWord(key)
	enc    []byte // "key":
	secret bool
}

// is reports whether e is the entry for key, whose keyWord is w. A key of
// eight bytes or fewer is all in its word, so it takes no string compare.
func (e *keyEntry) is(key string, w uint64) bool {
	return e != nil && e.word == w && len(e.key) == len(key) && (len(key) <= 8 || e.key == key)
}

// keyInfo returns key's entry from the core's small cache, making it on a
// miss. The cache is two-way set associative, so two hot keys that hash
// alike do not evict each other on every record. Entries are compared by
// content, so a key built at run time is never mistaken for another.
func (c *core) keyInfo(key string) *keyEntry {
	w := keyWord(key)
	set := keyHash(key, w) % uint32(len(c.keys)) &^ 1
	a, b := &c.keys[set], &c.keys[set+1]
	ea := a.Load()
	if ea.is(key, w) {
		return ea
	}
	eb := b.Load()
	if eb.is(key, w) {
		return eb
	}
	e := &keyEntry{key: strings.Clone(key), word: w, secret: c.red.SecretKey(key)}
	e.enc = append(appendString(nil, key), ':')
	switch {
	case ea == nil:
		a.Store(e)
	case eb == nil:
		b.Store(e)
	default: // the newest entry in the first way, the one it displaces in the second
		b.Store(ea)
		a.Store(e)
	}
	return e
}

// keyWord packs a key's first eight bytes into a word; a shorter key's
// bytes, with its length, determine it exactly.
func keyWord(key string) uint64 {
	switch n := len(key); {
	case n >= 8:
		return load64(key[:8])
	case n >= 4:
		return uint64(load32(key[:4])) | uint64(load32(key[n-4:]))<<32
	default:
		var x uint64
		for i := 0; i < n; i++ {
			x |= uint64(key[i]) << (8 * i)
		}
		return x
	}
}

// keyHash hashes key, whose keyWord is w, a word at a time: attribute keys
// are short, and a hash that reads them a byte at a time costs more than the
// rest of the lookup.
func keyHash(key string, w uint64) uint32 {
	const m = 0x9E3779B97F4A7C15 // 2^64 / golden ratio
	h := (uint64(len(key))*m ^ w) * m
	for i := 8; i < len(key); i += 8 {
		j := min(i, len(key)-8) // the last word overlaps the one before
		h ^= h >> 29
		h = (h ^ load64(key[j:j+8])) * m
	}
	return uint32(h >> 32)
}

// NewJSONHandler returns a handler that writes to w; nil opts means the defaults.
func NewJSONHandler(w io.Writer, opts *HandlerOptions) *JSONHandler {
	if opts == nil {
		opts = &HandlerOptions{}
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &JSONHandler{
		c:      &core{w: w, level: level, addSource: opts.AddSource, red: NewRedactor(opts.RedactKeys)},
		merged: new(mergedCache),
	}
}

// Enabled reports whether records at level l are written.
func (h *JSONHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.c.level.Level()
}

// WithAttrs returns a handler whose records carry attrs, encoded now, once.
func (h *JSONHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.groups = h.groups[:len(h.groups):len(h.groups)]
	// A leading sentinel byte makes appendKey put a comma before the
	// first attribute, since pre always follows other fields.
	buf := append(make([]byte, 0, len(h.pre)+64), 'x')
	buf = append(buf, h.pre...)
	if len(h.groups) == 0 {
		rest := attrs[:0:0]
		for _, a := range attrs {
			if i := slotOf(a.Key); i >= 0 {
				h2.slots[i] = h.c.appendSlot(nil, i, a.Value.Resolve())
				h2.merged = nil
				continue
			}
			rest = append(rest, a)
		}
		attrs = rest
	}
	// Open the groups not yet opened, and keep them open only if an
	// attribute was written into them.
	mark := len(buf)
	for _, g := range h.groups[h.nOpen:] {
		buf = appendOpenGroup(buf, g)
	}
	opened := len(buf)
	for _, a := range attrs {
		buf = h.c.appendAttr(buf, a)
	}
	if len(buf) == opened {
		buf = buf[:mark]
	} else {
		h2.nOpen = len(h.groups)
	}
	h2.pre = buf[1:]
	if h2.merged == nil {
		h2.merged = new(mergedCache)
	}
	return &h2
}

// WithGroup returns a handler that nests later attributes under name.
func (h *JSONHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &h2
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Handle writes r as one JSON line.
func (h *JSONHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	buf = append(buf, '{')
	if !r.Time.IsZero() {
		buf = append(buf, `"timestamp":"`...)
		buf = appendTime(buf, r.Time)
		buf = append(buf, `",`...)
	}
	buf = append(buf, levelFields[levelIndex(r.Level)]...)

	global := h.c.encoded(globalBinding.Load())
	var local *encodedBinding
	if ctx != nil {
		if b, ok := ctx.Value(ctxKey{}).(*binding); ok {
			local = h.c.encoded(b)
		}
	}
	if local == nil {
		m := h.mergedWith(global)
		if len(m.logger) > 0 {
			buf = append(buf, m.logger...)
		}
		buf = append(buf, `,"message":`...)
		buf = appendStringValue(buf, r.Message)
		buf = append(buf, m.fields...)
	} else {
		buf = h.appendSlotFrom(buf, numSlots, global, local)
		buf = append(buf, `,"message":`...)
		buf = appendStringValue(buf, r.Message)
		for i := 0; i < numSlots; i++ {
			buf = h.appendSlotFrom(buf, i, global, local)
		}
	}
	if h.c.addSource && r.PC != 0 {
		buf = appendSource(buf, r.PC)
	}
	// Most of these are empty; append calls memmove even then.
	if len(global.extra) > 0 {
		buf = append(buf, global.extra...)
	}
	if local != nil {
		buf = append(buf, local.extra...)
	}
	if len(h.pre) > 0 {
		buf = append(buf, h.pre...)
	}

	// Not r.NumAttrs() > 0: calling a method of r copies all of it.
	buf = h.appendRecordAttrs(buf, &r)
	for range h.nOpen {
		buf = append(buf, '}')
	}
	buf = append(buf, '}', '\n')

	h.c.mu.Lock()
	_, err := h.c.w.Write(buf)
	h.c.mu.Unlock()

	if cap(buf) <= 64<<10 { // do not let one huge record pin memory
		*bp = buf
		bufPool.Put(bp)
	}
	return err
}

// appendRecordAttrs appends r's attributes inside the groups opened by
// WithGroup that pre has not opened, leaving those out when no attribute
// was written.
func (h *JSONHandler) appendRecordAttrs(buf []byte, r *slog.Record) []byte {
	mark := len(buf)
	for _, g := range h.groups[h.nOpen:] {
		buf = appendOpenGroup(buf, g)
	}
	opened := len(buf)
	r.Attrs(func(a slog.Attr) bool {
		buf = h.c.appendAttr(buf, a)
		return true
	})
	if len(buf) == opened {
		return buf[:mark]
	}
	for range h.groups[h.nOpen:] {
		buf = append(buf, '}')
	}
	return buf
}

// mergedCache holds a handler's context fields merged with the process-wide
// binding, so that a record whose context binds nothing copies them in two
// appends instead of eight. Handlers whose slots are the same share one.
type mergedCache struct {
	p atomic.Pointer[mergedSlots]
}

// mergedSlots is the merge with one encoding of the process-wide binding.
type mergedSlots struct {
	global *encodedBinding
	logger []byte // the logger field, with its comma, if any
	fields []byte // the context fields, each with its comma
}

// mergedWith returns h's slots merged with global, remaking the merge when
// the process-wide binding has changed since it was made.
func (h *JSONHandler) mergedWith(global *encodedBinding) *mergedSlots {
	if m := h.merged.p.Load(); m != nil && m.global == global {
		return m
	}
	m := &mergedSlots{global: global}
	m.logger = h.appendSlotFrom(nil, numSlots, global, nil)
	for i := 0; i < numSlots; i++ {
		m.fields = h.appendSlotFrom(m.fields, i, global, nil)
	}
	h.merged.p.Store(m)
	return m
}

// appendSlotFrom appends context slot i from the most specific place that
// binds it: the context, then this handler, then the process.
func (h *JSONHandler) appendSlotFrom(buf []byte, i int, global, local *encodedBinding) []byte {
	switch {
	case local != nil && local.slots[i] != nil:
		return append(buf, local.slots[i]...)
	case h.slots[i] != nil:
		return append(buf, h.slots[i]...)
	default:
		return append(buf, global.slots[i]...)
	}
}

// levelFields holds the encoded levelname field for each level name.
var levelFields = [5]string{
	`"levelname":"DEBUG"`, `"levelname":"INFO"`, `"levelname":"WARNING"`,
	`"levelname":"ERROR"`, `"levelname":"CRITICAL"`,
}

// encodedBinding is a binding encoded by one core.
type encodedBinding struct {
	c     *core
	slots [numSlots + 1][]byte
	extra []byte
}

// encoded returns b's encoding for c, from b's cache when c made it.
func (c *core) encoded(b *binding) *encodedBinding {
	if e := b.cache.Load(); e != nil && e.c == c {
		return e
	}
	e := &encodedBinding{c: c}
	for i := range b.slots {
		if b.set[i] {
			e.slots[i] = c.appendSlot(nil, i, b.slots[i].Resolve())
		}
	}
	buf := []byte{'{'} // so the first attribute gets no comma, then dropped
	for _, a := range b.extra {
		buf = c.appendAttr(buf, a)
	}
	if len(buf) > 1 {
		e.extra = append([]byte{','}, buf[1:]...)
	}
	b.cache.Store(e)
	return e
}

// appendSlot encodes context slot i, with its leading comma.
func (c *core) appendSlot(buf []byte, i int, v slog.Value) []byte {
	key := KeyLogger
	if i < numSlots {
		key = contextKeys[i]
	}
	buf = append(buf, ',', '"')
	buf = append(buf, key...)
	buf = append(buf, '"', ':')
	if v.Kind() == slog.KindGroup {
		return appendStringValue(buf, v.String())
	}
	return appendValue(buf, v)
}

// appendAttr appends one attribute, with a comma before it unless it opens
// an object. Empty attributes and empty groups leave buf as it was.
func (c *core) appendAttr(buf []byte, a slog.Attr) []byte {
	kind := a.Value.Kind()
	if kind == slog.KindLogValuer { // Resolve's deferred recover costs even when idle
		a.Value = a.Value.Resolve()
		kind = a.Value.Kind()
	}
	if a.Key == "" && kind == slog.KindAny && a.Value.Any() == nil {
		return buf
	}
	if kind == slog.KindGroup {
		attrs := a.Value.Group()
		if len(attrs) == 0 {
			return buf
		}
		if a.Key == "" { // an inline group
			for _, ga := range attrs {
				buf = c.appendAttr(buf, ga)
			}
			return buf
		}
		mark := len(buf)
		k := c.keyInfo(a.Key)
		buf = appendKeyEnc(buf, k.enc)
		if k.secret {
			return appendString(buf, Redacted)
		}
		buf = append(buf, '{')
		opened := len(buf)
		for _, ga := range attrs {
			buf = c.appendAttr(buf, ga)
		}
		if len(buf) == opened {
			return buf[:mark]
		}
		return append(buf, '}')
	}
	k := c.keyInfo(a.Key)
	buf = appendKeyEnc(buf, k.enc)
	if k.secret {
		return appendString(buf, Redacted)
	}
	return appendValueKind(buf, a.Value, kind)
}

// appendKeyEnc appends an encoded key, with a comma before it unless it
// opens an object.
func appendKeyEnc(buf, enc []byte) []byte {
	if n := len(buf); n > 0 && buf[n-1] != '{' {
		buf = append(buf, ',')
	}
	return append(buf, enc...)
}

func appendKey(buf []byte, key string) []byte {
	if n := len(buf); n > 0 && buf[n-1] != '{' {
		buf = append(buf, ',')
	}
	buf = appendString(buf, key)
	return append(buf, ':')
}

func appendOpenGroup(buf []byte, name string) []byte {
	buf = appendKey(buf, name)
	return append(buf, '{')
}

// appendSource appends "source":"dir/file.go:line" for the call at pc.
func appendSource(buf []byte, pc uintptr) []byte {
	fs := runtime.CallersFrames([]uintptr{pc})
	f, _ := fs.Next()
	if f.File == "" {
		return buf
	}
	file := filepath.Join(filepath.Base(filepath.Dir(f.File)), filepath.Base(f.File))
	buf = append(buf, `,"source":"`...)
	buf = appendEscaped(buf, file)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, int64(f.Line), 10)
	return append(buf, '"')
}
