package logging

import "strings"

// Key-value pairs in free text: an error that quotes a configuration, a
// query string or a dumped struct carries its secrets under the same keys
// attributes do, so RedactString masks the value of a pair whose key
// SecretKey finds secret (with DefaultSecretKeys):
//
//	api_key=sk-X password=Y           key=value, also with spaces around '='
//	token: abc                        key: value, a space or tab after ':'
//	secret="quoted value"             a quoted value, '"' or '\'', masked inside the quotes
//	https://h/?access_token=Z&x=1     query parameters, which end at '&'
//	{"password":"hunter2"}            JSON text, escaped (\"password\":\"x\") or not
//	{Addr:redis:6379 Password:pw}     a struct printed with %+v, after its first field
//
// An unquoted value ends at white space or one of & , ; " ' \ < > `, less
// the closing brackets at its end that close no bracket in it, since they
// close the struct or map around the pair. An Authorization value keeps its
// scheme word ("Authorization: Bearer [REDACTED]"). A ':' with neither a
// space after it, nor a quote, nor a space before its key is a host and
// port or a URL scheme, never a pair, so "token-service:8080" stays. A JSON
// number or literal under a quoted key stays too ({"token_count":5}):
// masking it would break the JSON it is in.

// minPairLen is the length of the shortest pair with a secret key: the
// shortest pattern, a separator and one byte of value.
var minPairLen = defaultRedactor.minLen + 2

// pairValue finds the value of a pair whose separator, '=' or ':', is s[i]
// and whose key looks secret; see above for the forms it takes.
func pairValue(s string, i int) (lo, hi, next int) {
	sep := s[i]
	v := i + 1
	for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v == len(s) || sep == '=' && s[v] == '=' { // "==" compares
		return 0, 0, i + 1
	}
	start, end, quote, letters := pairKey(s, i)
	if end-start < defaultRedactor.minLen || !defaultRedactor.mayBeSecret(letters) {
		return 0, 0, i + 1
	}
	if sep == ':' && v == i+1 && s[v] != '"' && s[v] != '\\' && (quote != 0 || start == 0 || s[start-1] != ' ') {
		return 0, 0, i + 1
	}
	if !defaultRedactor.SecretKey(s[start:end]) {
		return 0, 0, i + 1
	}
	switch c := s[v]; {
	case c == '"' || c == '\'':
		lo, hi = v+1, quotedEnd(s, v+1, c)
	case c == '\\' && v+1 < len(s) && s[v+1] == '"':
		lo, hi = v+2, escapedQuotedEnd(s, v+2)
	case quote == '"' && sep == ':':
		return 0, 0, i + 1 // a JSON number, literal, object or array
	default:
		lo, hi = v, valueEnd(s, v)
		// "Authorization: Bearer <credential>": the credential is the secret.
		if hi+1 < len(s) && s[hi] == ' ' && isAuthScheme(s[lo:hi]) {
			if h := valueEnd(s, hi+1); h > hi+1 {
				lo, hi = hi+1, h
			}
		}
		hi = trimClosers(s, lo, hi)
	}
	if hi <= lo || s[lo:hi] == Redacted {
		return 0, 0, i + 1
	}
	return lo, hi, hi
}

// pairKey returns the key before the separator s[i]: s[start:end], the
// quote around it, if any, and its letterSet. Spaces may come between a
// key and an '='; a quoted key may have escaped quotes, as in JSON text
// inside JSON text.
func pairKey(s string, i int) (start, end int, quote byte, letters uint32) {
	end = i
	if s[i] == '=' {
		for end > 0 && s[end-1] == ' ' {
			end--
		}
	}
	if end > 0 && (s[end-1] == '"' || s[end-1] == '\'') {
		quote = s[end-1]
		end--
		if end > 0 && s[end-1] == '\\' {
			end--
		}
	}
	start = end
	var bits uint32
	for start > 0 {
		b := keyBytes[s[start-1]]
		if b == 0 {
			break
		}
		bits |= b
		start--
	}
	if quote != 0 && (start == 0 || s[start-1] != quote) {
		return 0, 0, 0, 0 // not a quoted key after all
	}
	return start, end, quote, bits &^ keyByteBit
}

// quotedEnd returns the index of the quote q that closes a value starting
// at s[i], skipping backslash escapes; len(s) if none does.
func quotedEnd(s string, i int, q byte) int {
	for i < len(s) {
		switch s[i] {
		case '\\':
			i += 2
			continue
		case q:
			return i
		}
		i++
	}
	return len(s)
}

// escapedQuotedEnd returns where a value quoted with \" (in JSON text)
// that starts at s[i] ends: at the next \", or at a bare '"', which ends
// the JSON string holding it.
func escapedQuotedEnd(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && s[i+1] == '"' {
				return i
			}
			i += 2
			continue
		case '"':
			return i
		}
		i++
	}
	return len(s)
}

// valueEnd returns the end of the unquoted value starting at s[i].
func valueEnd(s string, i int) int {
	for i < len(s) && !endsValue[s[i]] {
		i++
	}
	return i
}

// trimClosers returns the end of the value s[lo:hi] less the closing
// brackets at its end that close no bracket opened in it: fmt's
// "{Password:pw}" and "map[token:t]" keep their brackets.
func trimClosers(s string, lo, hi int) int {
	if c := s[hi-1]; c != ')' && c != ']' && c != '}' {
		return hi // nearly always
	}
	var open, closed [3]int // of (), [] and {}
	for i := lo; i < hi; i++ {
		if k := strings.IndexByte("([{", s[i]); k >= 0 {
			open[k]++
		} else if k := strings.IndexByte(")]}", s[i]); k >= 0 {
			closed[k]++
		}
	}
	for hi > lo {
		k := strings.IndexByte(")]}", s[hi-1])
		if k < 0 || closed[k] <= open[k] {
			break
		}
		closed[k]--
		hi--
	}
	return hi
}

// isAuthScheme reports whether w is an Authorization scheme word that comes
// before the credential.
func isAuthScheme(w string) bool {
	return strings.EqualFold(w, "Bearer") || strings.EqualFold(w, "Basic") ||
		strings.EqualFold(w, "Bot") || strings.EqualFold(w, "Token")
}

var endsValue = byteSet("&,;\"'\\<>` \t\r\n\v\f")
