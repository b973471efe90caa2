package logging

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// The encoder appends JSON to a byte slice by hand: no reflection and no fmt
// for the kinds a log record normally holds, which is what keeps a record at
// zero allocations.

const hexDigits = "0123456789abcdef"

// safeASCII[b] is true for the bytes that need no escaping inside a JSON string.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendString appends s as a JSON string, quotes included. Control
// characters are escaped, so no value can end a line early or forge another
// record; invalid UTF-8 becomes U+FFFD.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	buf = appendEscaped(buf, s)
	return append(buf, '"')
}

func appendEscaped(buf []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Skip eight plain ASCII bytes at a time: most text needs no escaping.
		for i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if safeASCII[b] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript
		// and in some log viewers.
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(buf, s[start:]...)
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is zero.
func hasZeroByte(x uint64) bool { return (x-lsb)&^x&msb != 0 }

// plain8 reports whether the eight bytes of s are ASCII that JSON takes as
// they are: no control character, quote, backslash or non-ASCII byte.
func plain8(s string) bool {
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	return x&msb == 0 && // ASCII
		(x-0x20*lsb)&^x&msb == 0 && // no byte below 0x20
		!hasZeroByte(x^('"'*lsb)) && !hasZeroByte(x^('\\'*lsb))
}

// timePrefix caches "2006-01-02T15:04:05." for the current second: records
// logged in the same second share it and only format their microseconds.
type timePrefix struct {
	sec    int64
	prefix [20]byte
}

var lastSecond atomic.Pointer[timePrefix]

// appendTime appends t in UTC as RFC 3339 with microseconds,
// 2006-01-02T15:04:05.000000Z, without going through time.Format.
func appendTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	p := lastSecond.Load()
	if p == nil || p.sec != sec {
		year, month, day := t.Date()
		if year < 0 || year > 9999 {
			return t.AppendFormat(buf, time.RFC3339Nano)
		}
		hour, min, s := t.Clock()
		p = &timePrefix{sec: sec, prefix: [20]byte{
			byte('0' + year/1000), byte('0' + year/100%10), byte('0' + year/10%10), byte('0' + year%10), '-',
			byte('0' + month/10), byte('0' + month%10), '-',
			byte('0' + day/10), byte('0' + day%10), 'T',
			byte('0' + hour/10), byte('0' + hour%10), ':',
			byte('0' + min/10), byte('0' + min%10), ':',
			byte('0' + s/10), byte('0' + s%10), '.'}}
		lastSecond.Store(p)
	}
	buf = append(buf, p.prefix[:]...)
	us := t.Nanosecond() / 1000
	buf = append(buf, byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
		byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10))
	return append(buf, 'Z')
}

// appendFloat appends f as a JSON number; NaN and the infinities, which JSON
// cannot hold, are written as strings.
func appendFloat(buf []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(buf, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(buf, `"-Inf"`...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, 64)
}

// appendValue appends a resolved, non-group value. String values, and the
// text of anything else that prints as a string, pass through the secret
// scanner.
func appendValue(buf []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindString:
		return appendString(buf, redactValue(v.String()))
	case slog.KindInt64:
		return strconv.AppendInt(buf, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(buf, v.Uint64(), 10)
	case slog.KindFloat64:
		return appendFloat(buf, v.Float64())
	case slog.KindBool:
		return strconv.AppendBool(buf, v.Bool())
	case slog.KindDuration:
		// Go's duration text ("1.5s") reads well and LogQL compares it
		// as a duration.
		return appendString(buf, v.Duration().String())
	case slog.KindTime:
		return appendString(buf, v.Time().Format(time.RFC3339Nano))
	default:
		return appendAny(buf, v.Any())
	}
}

func appendAny(buf []byte, a any) []byte {
	switch x := a.(type) {
	case nil:
		return append(buf, "null"...)
	case error:
		return appendString(buf, redactValue(x.Error()))
	case json.Marshaler:
		if b, err := x.MarshalJSON(); err == nil && json.Valid(b) {
			return appendCompact(buf, b)
		}
	case encoding.TextMarshaler:
		if b, err := x.MarshalText(); err == nil {
			return appendString(buf, redactValue(string(b)))
		}
	case fmt.Stringer:
		return appendString(buf, redactValue(x.String()))
	case []byte:
		return appendString(buf, redactValue(string(x)))
	}
	b, err := json.Marshal(a)
	if err != nil {
		return appendString(buf, redactValue(fmt.Sprintf("!ERROR:%v %+v", err, a)))
	}
	return appendCompact(buf, b)
}

// appendCompact appends JSON produced by a marshaler: on one line, so a
// MarshalJSON that indents cannot split the record, and through the secret
// scanner, since a struct can carry a URL with a password as well as a string.
func appendCompact(buf []byte, b []byte) []byte {
	if bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') >= 0 {
		var out bytes.Buffer
		if err := json.Compact(&out, b); err != nil {
			return appendString(buf, redactValue(string(b)))
		}
		b = out.Bytes()
	}
	if s := string(b); ContainsSecret(s) {
		return append(buf, RedactString(s)...)
	}
	return append(buf, b...)
}

// redactValue returns s with any secret it holds masked, and s itself (no
// copy) in the common case where it holds none.
func redactValue(s string) string {
	if ContainsSecret(s) {
		return RedactString(s)
	}
	return s
}
