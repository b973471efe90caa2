package logging

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestAppendDuration(t *testing.T) {
	durations := []time.Duration{
		0, 1, 9, 999, time.Microsecond, 1001, 1500, 999999, time.Millisecond,
		1500 * time.Microsecond, 1234567, 999999999, time.Second, 1500 * time.Millisecond,
		time.Second + 1, 59*time.Second + 999999999, time.Minute, time.Minute + 250*time.Millisecond,
		time.Hour, 2*time.Hour + 3*time.Minute + 4*time.Second + 5*time.Millisecond,
		100 * time.Hour, math.MaxInt64, math.MinInt64, math.MinInt64 + 1,
	}
	for _, d := range durations {
		durations = append(durations, -d)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		// Spread over every magnitude, with trailing zeros of every length.
		d := time.Duration(r.Int64N(math.MaxInt64>>r.IntN(63)) / int64(math.Pow10(r.IntN(10))) * int64(math.Pow10(r.IntN(10))))
		durations = append(durations, d, -d)
	}
	for _, d := range durations {
		if got, want := string(appendDuration(nil, d)), d.String(); got != want {
			t.Errorf("appendDuration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}

func FuzzAppendDuration(f *testing.F) {
	f.Add(int64(1500 * time.Millisecond))
	f.Add(int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, n int64) {
		d := time.Duration(n)
		if got, want := string(appendDuration(nil, d)), d.String(); got != want {
			t.Fatalf("appendDuration(%d) = %q, want %q", n, got, want)
		}
	})
}

// triggersOf is what escape reports for s.
func triggersOf(s string) uint8 {
	_, seen := escape(nil, s)
	return seen
}

func TestEscapeTriggers(t *testing.T) {
	// Each trigger byte at every offset, so both the word path and the
	// byte path see it.
	for _, c := range []byte("@ BbJ:.=\"\\\t\x00") {
		for n := 1; n <= 20; n++ {
			for i := range n {
				b := []byte(strings.Repeat("x", n))
				b[i] = c
				if got, want := triggersOf(string(b)), byteTriggers[c]; got != want {
					t.Errorf("triggers of %q = %06b, want %06b", b, got, want)
				}
			}
		}
	}
	for _, s := range []string{"", "x", "plain words here", "ÄÖÜ\x00\n\"\\ \u2028 end"} {
		want := uint8(0)
		for i := 0; i < len(s); i++ {
			want |= byteTriggers[s[i]]
		}
		if got := triggersOf(s); got != want {
			t.Errorf("triggers of %q = %06b, want %06b", s, got, want)
		}
	}
}

func TestHasColonToAt(t *testing.T) {
	for c := range 0x80 {
		for i := range 8 {
			b := []byte("aaaaaaaa")
			b[i] = byte(c)
			if got, want := hasColonToAt(load64(string(b))), ':' <= c && c <= '@'; got != want {
				t.Errorf("hasColonToAt(%q) = %v, want %v", b, got, want)
			}
		}
	}
}

// TestMayHoldSecretOnSecrets checks the prefilter passes every string the
// scanner masks, so skipping the scan never lets a secret through.
func TestMayHoldSecretOnSecrets(t *testing.T) {
	for _, s := range []string{
		"redis://:pw@h", "x://u:p@q@r", "Bearer abcdefgh", "bearer abcdefgh", "BEARER abcdefgh",
		"Basic abcdefgh", "Bot " + fakeDiscord, fakeDiscord, fakeDiscord2, fakeDiscord3,
		fakeTelegram, fakeTelegram2, fakeJWT, "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjMifQ.",
		"token=x", "token: x", "token:\tx", `{"token":"x"}`, `{\"token\":\"x\"}`, "{A:1 Token:x}",
		"http://h/?token=Z&x=1", `secret="quoted value"`,
	} {
		if !ContainsSecret(s) {
			t.Fatalf("ContainsSecret(%q) = false; the table needs a secret", s)
		}
		if !mayHoldSecret(triggersOf(s), len(s)) {
			t.Errorf("mayHoldSecret misses the secret in %q", s)
		}
	}
}

func FuzzMayHoldSecret(f *testing.F) {
	for _, tt := range innocents {
		f.Add(tt.in)
	}
	for _, s := range []string{"redis://:pw@h", "Bearer abcdefgh", fakeDiscord, fakeTelegram, fakeJWT,
		"token=x", "token: x", `{"token":"x"}`, "{A:1 Token:x}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seen := triggersOf(s)
		if ContainsSecret(s) && !mayHoldSecret(seen, len(s)) {
			t.Fatalf("mayHoldSecret misses the secret in %q", s)
		}
		if got, want := redactString(s, seen), RedactString(s); got != want {
			t.Fatalf("redactString(%q, its triggers) = %q, want %q", s, got, want)
		}
	})
}

func TestAppendStringValue(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "job finished", "job finished"},
		{"escaped", "a\"b\\c\nd\x01\u2028", "a\"b\\c\nd\x01\u2028"},
		{"URL password", "redis://:s3cr3t@redis:6379/0", "redis://:[REDACTED]@redis:6379/0"},
		{"bearer and control char", "Authorization: Bearer tok_FAKE0123456789abcdef\n", "Authorization: Bearer [REDACTED]\n"},
		{"telegram", fakeTelegram, Redacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := appendStringValue([]byte("x"), tt.in)
			var got string
			if err := json.Unmarshal(out[1:], &got); err != nil {
				t.Fatalf("%s is not a JSON string: %v", out[1:], err)
			}
			if got != tt.want || out[0] != 'x' {
				t.Errorf("appendStringValue(%q) = %s, want %q after the prefix", tt.in, out, tt.want)
			}
		})
	}
}

func BenchmarkAppendDuration(b *testing.B) {
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendDuration(buf[:0], 1500*time.Millisecond)
	}
}

func BenchmarkAppendStringValue(b *testing.B) {
	buf := make([]byte, 0, 256)
	for _, bs := range benchStrings {
		b.Run(bs.name, func(b *testing.B) {
			for b.Loop() {
				buf = appendStringValue(buf[:0], bs.s)
			}
		})
	}
}

// FuzzAppendStringValue checks the fast paths of appendStringValue against
// the plain way: escape what RedactString leaves.
func FuzzAppendStringValue(f *testing.F) {
	for _, tt := range innocents {
		f.Add(tt.in)
	}
	for _, s := range []string{
		"redis://:pw@h", "x://u:p@q@r", "Bearer abcdefgh", "Basic abcdefgh", "bearer 12345678",
		"job finished", "browser.navigate", "a\"b\\c\n\x01", "\xff\xfe\u2028ok", fakeTelegram, fakeJWT,
		"token=x", "token: abc", "password=\"a b\"", "status=ok", "time: 5s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := string(appendStringValue([]byte("x"), s))
		want := "x" + string(appendString(nil, RedactString(s)))
		if got != want {
			t.Fatalf("appendStringValue(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendStringValueShortSecrets(t *testing.T) {
	// Secrets of 16 bytes or fewer take appendStringValue's short path.
	for _, in := range []string{"redis://:pw@h", "x://u:p@q@r", "a://:pass@h", "Bearer abcdefgh", "Basic abcdefgh", "bearer 12345678",
		"token=x", "token: x", "a password=Y", "{A:1 Token:x}", "api_key=sk-X"} {
		if !ContainsSecret(in) {
			t.Fatalf("ContainsSecret(%q) = false; the table needs a secret", in)
		}
		got := string(appendStringValue(nil, in))
		if want := string(appendString(nil, RedactString(in))); got != want {
			t.Errorf("appendStringValue(%q) = %s, want %s", in, got, want)
		}
	}
}
