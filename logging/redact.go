package logging

import (
	"cmp"
	"slices"
	"strings"
)

// Redacted replaces a secret value.
const Redacted = "[REDACTED]"

// DefaultSecretKeys are the attribute key patterns whose values are always
// hidden; see Redactor.SecretKey for how a key matches. LOG_REDACT_KEYS adds
// to them, it cannot remove any.
var DefaultSecretKeys = []string{
	"password", "passwd", "secret", "token", "api_key", "apikey",
	"authorization", "cookie", "private_key",
	"phone", // a chat user's phone number (sms_gateway) is personal data
}

// Redactor decides which attribute keys are secret. It is immutable after
// NewRedactor and safe for concurrent use. A nil or zero Redactor uses
// DefaultSecretKeys.
type Redactor struct {
	// groups[first[c]-1] are the normalized patterns starting with byte c,
	// so a key is scanned once and only compared where a pattern can start.
	first  [256]uint8
	groups [][]string
	minLen int // length of the shortest pattern
	// letters holds, for the patterns, the sets of letters they use (see
	// letterSet), less any that holds another: a key holding no set whole
	// cannot be secret, which costs less to learn than SecretKey. Each set
	// has a letter in anchors, the rarest in English text of its own, so
	// most keys are told apart by one AND.
	letters []uint32
	anchors uint32
}

var defaultRedactor = NewRedactor(nil)

// NewRedactor returns a Redactor for DefaultSecretKeys, as they are when it
// is called, plus extraKeys (from LOG_REDACT_KEYS). Extra keys are normalized
// like keys are (see SecretKey); blank and one-character ones are ignored.
func NewRedactor(extraKeys []string) *Redactor {
	r := &Redactor{minLen: int(^uint(0) >> 1)}
	var seen []string
	for _, k := range slices.Concat(DefaultSecretKeys, extraKeys) {
		p := normalizeKey(k)
		// A one-byte pattern would hide nearly every key; SecretKey
		// relies on patterns being longer.
		if len(p) < 2 || slices.Contains(seen, p) {
			continue
		}
		seen = append(seen, p)
		if r.first[p[0]] == 0 {
			r.groups = append(r.groups, nil)
			r.first[p[0]] = uint8(len(r.groups))
		}
		g := r.first[p[0]] - 1
		r.groups[g] = append(r.groups[g], p)
		r.minLen = min(r.minLen, len(p))
	}
	for _, p := range seen {
		m := letterSet(p)
		if slices.ContainsFunc(r.letters, func(o uint32) bool { return o&m == o }) {
			continue // a key holding m holds o
		}
		r.letters = slices.DeleteFunc(r.letters, func(o uint32) bool { return o&m == m })
		r.letters = append(r.letters, m)
	}
	for _, m := range r.letters {
		for _, c := range "zqxjkvbpygfwmucldrhsnioate" { // rarest first
			if b := letterBit[c]; m&b != 0 {
				r.anchors |= b
				break
			}
		}
	}
	return r
}

// letterBit maps an ASCII letter, in either case, to its bit in a set of
// letters; any other byte to 0.
var letterBit = func() (t [256]uint32) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1 << (c - 'a')
		t[c-'a'+'A'] = 1 << (c - 'a')
	}
	return t
}()

// keyByteBit is set, in keyBytes, for every byte a key in free text holds.
const keyByteBit = 1 << 31

// keyBytes maps a byte of a key in free text (see pairKey) to its letterBit
// plus keyByteBit, and any other byte to 0, so that one look-up both tells
// where a key starts and collects its letters.
var keyBytes = func() (t [256]uint32) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") {
		t[c] = letterBit[c] | keyByteBit
	}
	return t
}()

// letterSet returns the set of letters in s.
func letterSet(s string) uint32 {
	var m uint32
	for i := 0; i < len(s); i++ {
		m |= letterBit[s[i]]
	}
	return m
}

// mayBeSecret reports whether a key whose letters are the set m (see
// letterSet) can be secret: false means SecretKey would say so too.
func (r *Redactor) mayBeSecret(m uint32) bool {
	if m&r.anchors == 0 {
		// No anchor: no set is in m, unless a pattern without letters
		// left the empty set alone, with no anchor, in letters.
		return r.anchors == 0
	}
	for _, p := range r.letters {
		if p&m == p {
			return true
		}
	}
	return false
}

// keyFold maps a key byte to its normalized form: ASCII letters to lower
// case, the separators '-', '_' and ' ' to 0 (dropped), anything else to
// itself. Dropping separators makes "api_key", "api-key", "apiKey" and
// "API KEY" one key.
var keyFold = func() (t [256]byte) {
	for c := range t {
		t[c] = byte(c)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c) + 'a' - 'A'
	}
	t['-'], t['_'], t[' '], t[0] = 0, 0, 0, 0
	return t
}()

func normalizeKey(k string) string {
	b := make([]byte, 0, len(k))
	for i := 0; i < len(k); i++ {
		if c := keyFold[k[i]]; c != 0 {
			b = append(b, c)
		}
	}
	return string(b)
}

// SecretKey reports whether the value under key must be hidden. Matching
// ignores ASCII case and the separators '-', '_' and ' ', and a key matches
// when it contains a pattern anywhere, so db_password, X-Api-Key, apiKey,
// access_token, Set-Cookie, Proxy-Authorization and SECRET_KEY_BASE are all
// secret, while user, username, job_id, message, key and author are not.
//
// Containment errs on the side of hiding: "tokens", "max_tokens" and
// "token_count" are secret too, because a key that merely mentions a token
// is more often holding one than counting them; log such counts under a name
// without "token" (for example "llm_usage"). SecretKey does not allocate.
func (r *Redactor) SecretKey(key string) bool {
	if r == nil || r.groups == nil {
		r = defaultRedactor
	}
	if len(key) < r.minLen {
		return false
	}
	var buf [64]byte
	if len(key) > len(buf) {
		return r.secretLongKey(key)
	}
	n := 0
	for i := 0; i < len(key); i++ {
		c := keyFold[key[i]]
		buf[n] = c
		if c != 0 {
			n++
		}
	}
	norm := buf[:n]
	for i := 0; i+r.minLen <= len(norm); i++ {
		g := r.first[norm[i]]
		if g == 0 {
			continue
		}
		for _, p := range r.groups[g-1] {
			// Patterns have 2 bytes or more (see NewRedactor); comparing
			// the second first saves most calls to memequal.
			if len(p) <= len(norm)-i && norm[i+1] == p[1] && string(norm[i:i+len(p)]) == p {
				return true
			}
		}
	}
	return false
}

// secretLongKey is SecretKey for keys too long for its buffer: it
// normalizes while it compares, which is slower but needs no memory.
func (r *Redactor) secretLongKey(key string) bool {
	for i := 0; i < len(key); i++ {
		g := r.first[keyFold[key[i]]]
		if g == 0 {
			continue
		}
		for _, p := range r.groups[g-1] {
			if foldedHasPrefix(key[i+1:], p[1:]) {
				return true
			}
		}
	}
	return false
}

// foldedHasPrefix reports whether key, normalized by keyFold, begins with the
// normalized pattern p.
func foldedHasPrefix(key, p string) bool {
	j := 0
	for k := 0; k < len(p); j++ {
		if j >= len(key) {
			return false
		}
		c := keyFold[key[j]]
		if c == 0 {
			continue
		}
		if c != p[k] {
			return false
		}
		k++
	}
	return true
}

// What RedactString finds, and how it finds it fast. Every secret contains a
// trigger byte: '@' (URL password), 'B' or 'b' (authorization scheme word),
// 'J' (a JWT's "eyJ"), ':' (Telegram token), '.' (Discord token), or the '='
// or ':' of a key-value pair (see pairValue). Each detector finds its
// trigger with strings.IndexByte, which is SIMD and costs a few nanoseconds
// on a short string (a Go loop over the bytes costs far more), and it does
// not run at all on a string too short to hold its secret, so the common
// bytes ':' and '.' only matter in strings of 43 and 58 bytes or more,
// unless a ':' has a space or an escaped byte beside it in the string, as
// "key: value" and JSON text do.
const (
	minURLLen      = len("://:x@")
	minAuthLen     = len("Basic ") + 8
	minJWTLen      = 10 + 1 + 10 + 1 // "eyJ" headers and payloads are never shorter
	minTelegramLen = 8 + 1 + minTelegramSecret
	minDiscordLen  = 23 + 1 + 6 + 1 + 27

	// Bot API tokens have 35 characters after the ':', the first an 'A';
	// the example in Telegram's own documentation has 34.
	minTelegramSecret = 34
	maxTelegramSecret = 35
)

// Trigger bytes: the bytes each kind of secret cannot do without, as bits.
// An encoder that reads a string anyway (to escape it) notes which it holds;
// mayHoldSecret then tells, without another pass, whether the string needs
// the full scan at all.
const (
	trigAt      = 1 << iota // '@' ends a URL's userinfo
	trigSpace               // ' ' follows an authorization scheme word
	trigB                   // 'B' or 'b' starts one
	trigJ                   // 'J' ends a JWT's leading "eyJ"
	trigColon               // ':' is in "://", in a Telegram token and in "key: value"
	trigDot                 // '.' separates the parts of a JWT and of a Discord token
	trigEq                  // '=' is in "key=value"
	trigEscaped             // a byte JSON escapes: '"', '\', a control character such as '\t'
)

// byteTriggers maps a byte to its trigger bit.
var byteTriggers = func() (t [256]uint8) {
	t['@'], t[' '], t['B'], t['b'] = trigAt, trigSpace, trigB, trigB
	t['J'], t[':'], t['.'], t['='] = trigJ, trigColon, trigDot, trigEq
	for c := range ' ' {
		t[c] = trigEscaped
	}
	t['"'], t['\\'] = trigEscaped, trigEscaped
	return t
}()

// wordTriggers finds the trigger bytes among the eight bytes of x. It
// returns them in the low bits of x's bytes, trigger bit k in bit k of the
// byte that holds it (or of a higher byte: zeroBytes is exact only about
// whether a word has a zero byte, which is all that counts here); OR the
// results of many words and fold them once with foldTriggers. x is a plain
// word (see plainWord), so it holds no trigEscaped byte.
func wordTriggers(x uint64) uint64 {
	t := zeroBytes(x^(' '*lsb))>>6 |
		zeroBytes((x|0x20*lsb)^('b'*lsb))>>5 | // only 'B' and 'b' become 'b'
		zeroBytes(x^('J'*lsb))>>4 | zeroBytes(x^('.'*lsb))>>2
	if hasColonToAt(x) { // seldom: one test for the three
		t |= zeroBytes(x^('@'*lsb))>>7 | zeroBytes(x^(':'*lsb))>>3 | zeroBytes(x^('='*lsb))>>1
	}
	return t
}

// zeroBytes sets the high bit of some byte of x when any byte of x is zero,
// and of none otherwise.
func zeroBytes(x uint64) uint64 { return (x - lsb) &^ x & msb }

// foldTriggers ORs the bytes of wordTriggers' results into one set of bits.
func foldTriggers(w uint64) uint8 {
	w |= w >> 32
	w |= w >> 16
	w |= w >> 8
	return uint8(w)
}

// mayHoldSecret reports whether a string of n bytes holding the trigger
// bytes seen can hold a secret ContainsSecret finds. It is exact in one
// direction only: false means there is no secret, true that ContainsSecret
// must look. Each condition is one the scanners below require.
func mayHoldSecret(seen uint8, n int) bool {
	has := func(t uint8) bool { return seen&t == t }
	return n >= minURLLen && has(trigAt|trigColon) ||
		n >= minAuthLen && has(trigB|trigSpace) ||
		n >= minJWTLen && has(trigJ|trigDot) ||
		n >= minTelegramLen && has(trigColon) ||
		n >= minDiscordLen && has(trigDot) ||
		n >= minPairLen && (has(trigEq) || has(trigColon) && seen&(trigSpace|trigEscaped) != 0)
}

// shortMayHoldSecret is mayHoldSecret for s, a string of n bytes, 16 or
// fewer, whose bytes the words x0 and x1 hold between them, and which are
// plain (plainWord). Strings this short hold an authorization credential,
// which needs a space, a URL password, which needs an '@', or a key-value
// pair, which needs an '=' or a ':' and a space and the letters of a secret
// key, but nothing else. Short values such as "status=ok" are common
// enough to look at their letters rather than their keys.
func shortMayHoldSecret(s string, x0, x1 uint64, n int) bool {
	has := func(c byte) bool { return hasZeroByte(x0^uint64(c)*lsb) || hasZeroByte(x1^uint64(c)*lsb) }
	if n >= minAuthLen && has(' ') && (has('B') || has('b')) {
		return true
	}
	// Most short values hold none of ':', '=' and '@', which lie together
	// in 0x3A-0x40: one test a word rules out all three.
	if n < minURLLen || !hasColonToAt(x0) && !hasColonToAt(x1) {
		return false
	}
	return has('@') || n >= minPairLen && (has('=') || has(':') && has(' ')) && defaultRedactor.mayBeSecret(letterSet(s))
}

// hasColonToAt reports whether x, eight ASCII bytes, holds one from ':' to
// '@' (0x3A-0x40). A byte b has 0xC0-b >= 0x80 when b <= 0x40, and b+0x46 >=
// 0x80 when b >= 0x3A; neither sum carries into the next byte.
func hasColonToAt(x uint64) bool {
	return (0xC0*lsb-x)&(x+0x46*lsb)&msb != 0
}

// ContainsSecret reports whether s holds a secret RedactString would mask: a
// password in a URL's userinfo, an Authorization credential after "Bearer ",
// "Basic " or "Bot ", a Discord or Telegram bot token, a JWT, or the value of
// a key-value pair whose key looks secret. It is the
// allocation-free test an encoder runs on every string value; only when it
// reports true does the caller need RedactString.
func ContainsSecret(s string) bool { return containsSecret(s, allTriggers) }

// containsSecret is ContainsSecret for a string that holds no trigger byte
// outside seen, so that the scan can pass over the secrets that need one.
func containsSecret(s string, seen uint8) bool {
	if len(s) < minURLLen {
		return false
	}
	found := false
	scanSecrets(s, seen, func(int, int) bool {
		found = true
		return false
	})
	return found
}

// RedactString returns s with every secret ContainsSecret detects replaced by
// Redacted:
//
//	redis://:pw@host:6379/0             -> redis://:[REDACTED]@host:6379/0
//	https://user:pw@host                -> https://user:[REDACTED]@host
//	Authorization: Bearer eyJhbGciOi... -> Authorization: Bearer [REDACTED]
//	.../bot123456789:AAHdqTc.../getMe   -> .../bot[REDACTED]/getMe
//	MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.x -> [REDACTED]
//	api_key=sk-X password="a b"         -> api_key=[REDACTED] password="[REDACTED]"
//	token: abc                          -> token: [REDACTED]
//	https://h/?token=Z&x=1              -> https://h/?token=[REDACTED]&x=1
//	{"password":"hunter2"}              -> {"password":"[REDACTED]"}
//
// A URL's username is kept; a bot token is masked whole; a key-value pair
// keeps its key and quotes (see pairValue for the forms it finds). Pair
// keys are matched against DefaultSecretKeys, not LOG_REDACT_KEYS. When s
// holds no secret RedactString returns s itself without allocating.
func RedactString(s string) string { return redactString(s, allTriggers) }

// redactString is RedactString for a string that holds no trigger byte
// outside seen.
func redactString(s string, seen uint8) string {
	if len(s) < minURLLen {
		return s
	}
	var buf [4]secretSpan
	spans := buf[:0]
	scanSecrets(s, seen, func(lo, hi int) bool {
		spans = append(spans, secretSpan{lo, hi})
		return true
	})
	if len(spans) == 0 {
		return s
	}
	// Merge overlapping and touching spans, which detectors can produce.
	slices.SortFunc(spans, func(a, b secretSpan) int { return cmp.Compare(a.lo, b.lo) })
	var b strings.Builder
	b.Grow(len(s) + len(spans)*len(Redacted))
	done, cur := 0, spans[0] // s[:done] is written; cur is the secret to mask next
	for _, sp := range spans[1:] {
		if sp.lo <= cur.hi {
			cur.hi = max(cur.hi, sp.hi)
			continue
		}
		b.WriteString(s[done:cur.lo])
		b.WriteString(Redacted)
		done, cur = cur.hi, sp
	}
	b.WriteString(s[done:cur.lo])
	b.WriteString(Redacted)
	b.WriteString(s[cur.hi:])
	return b.String()
}

// secretSpan is the byte range s[lo:hi] of one secret.
type secretSpan struct{ lo, hi int }

// allTriggers stands for the trigger bytes of a string not looked at yet:
// any of them may be in it.
const allTriggers = 0xff

// scanSecrets calls yield with the range of each secret in s until yield
// returns false. Ranges may come in any order and overlap: a URL password
// can hold a Telegram token. Only secrets whose trigger bytes are all in
// seen are looked for.
func scanSecrets(s string, seen uint8, yield func(lo, hi int) bool) {
	n := len(s)
	has := func(t uint8) bool { return seen&t == t }
	// Each trigger is only looked for where its secret fits around it.
	_ = (!has(trigAt|trigColon) || scanFor(s, '@', 3, n, urlPassword, yield)) &&
		(n < minAuthLen || !has(trigB|trigSpace) || scanFor(s, 'B', 0, n-minAuthLen+1, authCredential, yield) &&
			scanFor(s, 'b', 0, n-minAuthLen+1, authCredential, yield)) &&
		(n < minJWTLen || !has(trigJ|trigDot) || scanFor(s, 'J', 2, n-minJWTLen+3, jwtAt, yield)) &&
		(n < minTelegramLen || !has(trigColon) || scanFor(s, ':', 8, n-minTelegramSecret, telegramToken, yield)) &&
		(n < minDiscordLen || !has(trigDot) || scanFor(s, '.', 23, n-minDiscordLen+24, discordToken, yield)) &&
		(n < minPairLen || !has(trigEq) || scanFor(s, '=', defaultRedactor.minLen, n-1, pairValue, yield)) &&
		(n < minPairLen || !has(trigColon) || seen&(trigSpace|trigEscaped) == 0 ||
			scanFor(s, ':', defaultRedactor.minLen, n-1, pairValue, yield))
}

// scanFor calls find at each trigger byte c in s[from:to], and yield with
// each secret find reports. find returns the secret's range (empty when there
// is none) and where to look for the next trigger, which is past s[i].
// scanFor returns false when yield asked to stop.
func scanFor(s string, c byte, from, to int, find func(s string, i int) (lo, hi, next int), yield func(lo, hi int) bool) bool {
	for i := from; i < to; {
		j := strings.IndexByte(s[i:to], c)
		if j < 0 {
			break
		}
		lo, hi, next := find(s, i+j)
		if hi > lo && !yield(lo, hi) {
			return false
		}
		i = next
	}
	return true
}

// urlPassword finds the password of a "scheme://user:password@host" URL
// whose authority holds the '@' s[at]. The authority ends at the first '/',
// '?', '#', quote, '<', '>' or white space; the password runs from the first
// ':' of the userinfo to the last '@' before that end, since unescaped '@'s
// in passwords are common. An empty or already masked password is not a
// secret. next is where the authority ends: any '@' before it gives the
// same answer.
func urlPassword(s string, at int) (lo, hi, next int) {
	start := at
	for start > 0 && !endsAuthority[s[start-1]] {
		start--
	}
	end := at + 1
	for end < len(s) && !endsAuthority[s[end]] {
		if s[end] == '@' {
			at = end
		}
		end++
	}
	if start < 3 || s[start-3:start] != "://" {
		return 0, 0, end
	}
	c := strings.IndexByte(s[start:at], ':')
	if c < 0 {
		return 0, 0, end
	}
	lo = start + c + 1
	if lo == at || s[lo:at] == Redacted {
		return 0, 0, end
	}
	return lo, at, end
}

// authCredential finds the credential after an authorization scheme word
// starting at s[i]: at least 8 token68 characters after "Bearer " (in any of
// its usual cases) or "Basic ", but 50 after "Bot ", because bot names follow
// "Bot " in ordinary messages ("Bot eu-7 started"); Discord bot tokens are
// caught by their shape anyway.
func authCredential(s string, i int) (lo, hi, next int) {
	// "Bearer" must be a word of its own, not the end of "Forbearer".
	if i > 0 && isLetter(s[i-1]) {
		return 0, 0, i + 1
	}
	rest := s[i:]
	minToken := 8
	switch {
	case len(rest) > 7 && (rest[:7] == "Bearer " || rest[:7] == "bearer " || rest[:7] == "BEARER "):
		lo = i + 7
	case len(rest) > 6 && rest[:6] == "Basic ":
		lo = i + 6
	case len(rest) > 4 && rest[:4] == "Bot ":
		lo, minToken = i+4, 50
	default:
		return 0, 0, i + 1
	}
	hi = lo
	for hi < len(s) && isToken68[s[hi]] {
		hi++
	}
	for hi < len(s) && s[hi] == '=' {
		hi++
	}
	if hi-lo < minToken {
		return 0, 0, i + 1
	}
	return lo, hi, hi
}

// jwtAt finds a JSON Web Token whose leading "eyJ" ends at s[j]: header and
// payload are base64url JSON objects, so both start with "eyJ"; the
// signature may be empty (alg "none").
func jwtAt(s string, j int) (lo, hi, next int) {
	lo = j - 2
	if lo < 0 || s[lo:j] != "ey" || (lo > 0 && isBase64URL[s[lo-1]]) {
		return 0, 0, j + 1
	}
	dot := base64URLRun(s, lo)
	if dot-lo < 10 || dot >= len(s) || s[dot] != '.' || !strings.HasPrefix(s[dot+1:], "eyJ") {
		return 0, 0, j + 1
	}
	dot2 := base64URLRun(s, dot+1)
	if dot2-dot-1 < 10 || dot2 >= len(s) || s[dot2] != '.' {
		return 0, 0, j + 1
	}
	hi = base64URLRun(s, dot2+1)
	return lo, hi, hi
}

// telegramToken finds a Telegram bot token, "<8-10 digit bot id>:<34-35
// base64url characters starting with 'A'>", whose ':' is s[colon]. Letters
// may precede the id, since the Bot API puts tokens in URLs as /bot<token>/;
// a longer run of digits or of base64url characters is something else.
func telegramToken(s string, colon int) (lo, hi, next int) {
	if colon+1 >= len(s) || s[colon+1] != 'A' {
		return 0, 0, colon + 1
	}
	lo = colon
	for lo > 0 && colon-lo <= 10 && isDigit(s[lo-1]) {
		lo--
	}
	if n := colon - lo; n < 8 || n > 10 {
		return 0, 0, colon + 1
	}
	hi = base64URLRun(s, colon+1)
	if n := hi - colon - 1; n < minTelegramSecret || n > maxTelegramSecret {
		return 0, 0, colon + 1
	}
	return lo, hi, hi
}

// discordToken finds a Discord bot token whose first '.' is s[dot]. A token
// is three '.'-separated base64url segments: the base64 of the bot's decimal
// snowflake id (23 to 28 characters, starting with M, N or O, the encodings
// of a leading digit 1-9), a 6 to 8 character timestamp, and an HMAC of at
// least 27 characters.
func discordToken(s string, dot int) (lo, hi, next int) {
	lo = dot
	for lo > 0 && dot-lo <= 28 && isBase64URL[s[lo-1]] {
		lo--
	}
	if n := dot - lo; n < 23 || n > 28 || (s[lo] != 'M' && s[lo] != 'N' && s[lo] != 'O') {
		return 0, 0, dot + 1
	}
	dot2 := base64URLRun(s, dot+1)
	if n := dot2 - dot - 1; n < 6 || n > 8 || dot2 >= len(s) || s[dot2] != '.' {
		return 0, 0, dot + 1
	}
	hi = base64URLRun(s, dot2+1)
	if hi-dot2-1 < 27 {
		return 0, 0, dot + 1
	}
	return lo, hi, hi
}

// base64URLRun returns the end of the run of base64url characters at s[i:].
func base64URLRun(s string, i int) int {
	for i < len(s) && isBase64URL[s[i]] {
		i++
	}
	return i
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// Byte classes for the scanners.
var (
	isBase64URL   = byteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
	isToken68     = byteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")
	endsAuthority = byteSet("/?#\"'`<> \t\r\n\v\f")
)

func byteSet(chars string) (set [256]bool) {
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return set
}
