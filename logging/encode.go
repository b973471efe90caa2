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
	buf, _ = escape(buf, s)
	return append(buf, '"')
}

// appendStringValue is appendString for a value that may hold a secret
// (see RedactString). Every secret needs certain bytes (see mayHoldSecret),
// and most strings lack them, so the escaping pass notes which a string
// holds; only one that has them is scanned in full, and rewritten if it
// holds a secret.
func appendStringValue(buf []byte, s string) []byte {
	if n := len(s); n >= 4 && n <= 16 {
		// Short values (ids, names, hosts) are most values: two
		// overlapping words hold all of one, which spares the loop.
		var x0, x1 uint64 // lastWord's way, written out: it is not inlined
		if n >= 8 {
			x0, x1 = load64(s[:8]), load64(s[n-8:])
		} else {
			x0 = uint64(load32(s[:4])) | uint64(load32(s[n-4:]))<<32
			x1 = x0
		}
		if plainWord(x0) && plainWord(x1) && !shortMayHoldSecret(s, x0, x1, n) {
			buf = append(buf, '"')
			buf = append(buf, s...)
			return append(buf, '"')
		}
	}
	mark := len(buf)
	buf = append(buf, '"')
	buf, seen := escape(buf, s)
	if mayHoldSecret(seen, len(s)) && containsSecret(s, seen) {
		return appendString(buf[:mark], redactString(s, seen))
	}
	return append(buf, '"')
}

func appendEscaped(buf []byte, s string) []byte {
	buf, _ = escape(buf, s)
	return buf
}

// escape appends s escaped for a JSON string, and reports which of the secret
// scanner's trigger bytes it holds, as mayHoldSecret takes them.
func escape(buf []byte, s string) ([]byte, uint8) {
	var words uint64 // triggers found in plain words, as wordTriggers has them
	var seen uint8   // triggers found byte by byte
	start := 0
	tail := len(s) < 4 // whether the tail word below was tried
	for i := 0; i < len(s); {
		// Take eight plain ASCII bytes at a time: most text needs no
		// escaping.
		for i+8 <= len(s) {
			x := load64(s[i : i+8])
			if !plainWord(x) {
				break
			}
			words |= wordTriggers(x)
			i += 8
		}
		if i >= len(s) {
			break
		}
		// The last bytes, fewer than eight, are plain if the word they
		// end is: a word that overlaps bytes already taken, or for a
		// short string two overlapping halves.
		if !tail && i+8 > len(s) {
			tail = true
			if x := lastWord(s); plainWord(x) {
				words |= wordTriggers(x)
				break
			}
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if safeASCII[b] {
				seen |= byteTriggers[b]
				i++
				continue
			}
			seen |= trigEscaped
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
	return append(buf, s[start:]...), seen | foldTriggers(words)
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is zero.
func hasZeroByte(x uint64) bool { return (x-lsb)&^x&msb != 0 }

// load64 reads the eight bytes of s as a little-endian word; the compiler
// makes it one load.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// lastWord returns the last eight bytes of s, which has four or more, as a
// word; when s is shorter than eight, its first and last four bytes.
func lastWord(s string) uint64 {
	if n := len(s); n < 8 {
		return uint64(load32(s[:4])) | uint64(load32(s[n-4:]))<<32
	}
	return load64(s[len(s)-8:])
}

// load32 reads the four bytes of s as a little-endian word.
func load32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// plainWord reports whether the eight bytes of x are ASCII that JSON takes
// as they are: no control character, quote, backslash or non-ASCII byte.
func plainWord(x uint64) bool {
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
	sec := t.Unix() // the same in every location
	p := lastSecond.Load()
	if p == nil || p.sec != sec {
		t = t.UTC()
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
	us := uint32(t.Nanosecond()) / 1000
	hi, mid, lo := us/10000*2, us/100%100*2, us%100*2
	return append(buf, digitPairs[hi], digitPairs[hi+1], digitPairs[mid], digitPairs[mid+1],
		digitPairs[lo], digitPairs[lo+1], 'Z')
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
	return appendValueKind(buf, v, v.Kind())
}

// appendValueKind is appendValue for a value whose kind, k, the caller has
// already asked for: Kind is a type switch, and it shows in a profile.
func appendValueKind(buf []byte, v slog.Value, k slog.Kind) []byte {
	switch k {
	case slog.KindString:
		return appendStringValue(buf, v.String())
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
		// as a duration. It never needs escaping.
		buf = append(buf, '"')
		buf = appendDuration(buf, v.Duration())
		return append(buf, '"')
	case slog.KindTime:
		// RFC 3339 text never needs escaping either.
		buf = append(buf, '"')
		buf = v.Time().AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"')
	default:
		return appendAny(buf, v.Any())
	}
}

// appendDuration appends the text time.Duration.String returns for d
// ("1.5s", "1m0.25s", "2h0m0s", "250ms", "1.5µs", "0s") without making a
// string, and in fewer divisions: String takes one per digit of the fraction.
func appendDuration(buf []byte, d time.Duration) []byte {
	u := uint64(d)
	if d < 0 {
		buf = append(buf, '-')
		u = -u // also right for math.MinInt64, whose magnitude fits a uint64
	}
	switch {
	case u == 0:
		return append(buf, '0', 's')
	case u < 1e3:
		buf = strconv.AppendUint(buf, u, 10)
		return append(buf, 'n', 's')
	case u < 1e6:
		buf = strconv.AppendUint(buf, u/1e3, 10)
		buf = appendFraction(buf, u%1e3, 3)
		return append(buf, "µs"...)
	case u < 1e9:
		buf = strconv.AppendUint(buf, u/1e6, 10)
		buf = appendFraction(buf, u%1e6, 6)
		return append(buf, 'm', 's')
	}
	sec := u / 1e9
	if sec >= 3600 {
		buf = strconv.AppendUint(buf, sec/3600, 10)
		buf = append(buf, 'h')
	}
	if sec >= 60 {
		buf = appendSexagesimal(buf, sec/60%60)
		buf = append(buf, 'm')
	}
	buf = appendSexagesimal(buf, sec%60)
	buf = appendFraction(buf, u%1e9, 9)
	return append(buf, 's')
}

// appendSexagesimal appends v, below 60, in decimal.
func appendSexagesimal(buf []byte, v uint64) []byte {
	if v < 10 {
		return append(buf, byte('0'+v))
	}
	return append(buf, digitPairs[v*2], digitPairs[v*2+1])
}

// appendFraction appends frac, a fraction of prec decimal digits (at most
// 9), as "." and its digits without trailing zeros; nothing when it is zero.
// It divides by constants, which the compiler makes multiplications, and
// writes two digits per division.
func appendFraction(buf []byte, frac uint64, prec int) []byte {
	if frac == 0 {
		return buf
	}
	f := uint32(frac) // below 10^9
	if f%10 == 0 {
		// Drop the trailing zeros: 8 (all but one digit of nine), or up
		// to 7 in halving steps.
		if f%1e8 == 0 {
			f /= 1e8
			prec -= 8
		} else {
			if f%1e4 == 0 {
				f /= 1e4
				prec -= 4
			}
			if f%100 == 0 {
				f /= 100
				prec -= 2
			}
			if f%10 == 0 {
				f /= 10
				prec--
			}
		}
	}
	buf = append(buf, '.')
	buf = append(buf, "000000000"[:prec]...)
	i := len(buf)
	for f >= 100 {
		q := f / 100
		d := (f - q*100) * 2
		buf[i-2], buf[i-1] = digitPairs[d], digitPairs[d+1]
		i -= 2
		f = q
	}
	if f >= 10 {
		buf[i-2], buf[i-1] = digitPairs[f*2], digitPairs[f*2+1]
	} else {
		buf[i-1] = byte('0' + f)
	}
	return buf
}

const digitPairs = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" +
	"30313233343536373839" + "40414243444546474849" + "50515253545556575859" +
	"60616263646566676869" + "70717273747576777879" + "80818283848586878889" +
	"90919293949596979899"

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
		// Masking keeps JSON valid as a rule ({"password":"[REDACTED]"}),
		// but a value RedactString reads as free text can straddle JSON's
		// own quotes; then the record carries the masked text as a string.
		r := RedactString(s)
		if !json.Valid([]byte(r)) {
			return appendString(buf, r)
		}
		return append(buf, r...)
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
