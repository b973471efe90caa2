package logging

import (
	"strings"
	"testing"
)

// Every secret below is a fake made for these tests: right shape, no value.
const (
	fakeDiscord   = "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
	fakeDiscord2  = "OTg3NjU0MzIxMDk4NzY1NDMy.Gx9_kQ.pTyGJMuHbEL31IeL2HPcHyGcFRl1SPnXNYvMIH"
	fakeDiscord3  = "NTUxMjM0NTY3ODkwMTIzNDU2Nw.Yq-4ZA.KWTddB-XhkAS1voQG6yyzyN9zHY"
	fakeTelegram  = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" // shaped like Telegram's documented example
	fakeTelegram2 = "5512345678:AAE575YX8XM5mSLFy5UBIHEYeD7p4Zdl_AK"
	fakeJWT       = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib3QtNDIiLCJpYXQiOjE3MDAwMDAwMDB9.ZmFrZS1zaWduYXR1cmUtbm90LXJlYWw"
)

func TestRedactString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "redis URL without user",
			in:   "redis://:s3cr3t-Pa55@redis.internal:6379/0",
			want: "redis://:[REDACTED]@redis.internal:6379/0",
		},
		{
			name: "https URL with user",
			in:   "https://deploy:hunter2@git.example.com/org/repo.git",
			want: "https://deploy:[REDACTED]@git.example.com/org/repo.git",
		},
		{
			name: "URL without path",
			in:   "amqp://guest:guest@rabbit",
			want: "amqp://guest:[REDACTED]@rabbit",
		},
		{
			name: "password with unescaped @ and :",
			in:   "redis://:p@ss:w@rd@cache:6379",
			want: "redis://:[REDACTED]@cache:6379",
		},
		{
			name: "URL inside a Go url.Error",
			in:   `Get "https://admin:T0ps3cret@api.example.com/v1/bots": dial tcp 10.0.0.1:443: connect: connection refused`,
			want: `Get "https://admin:[REDACTED]@api.example.com/v1/bots": dial tcp 10.0.0.1:443: connect: connection refused`,
		},
		{
			name: "two URLs",
			in:   "primary redis://:one111@a:6379 replica redis://:two222@b:6379",
			want: "primary redis://:[REDACTED]@a:6379 replica redis://:[REDACTED]@b:6379",
		},
		{
			name: "percent-encoded password",
			in:   "postgres://fleet:p%40ss%3Aword@db:5432/fleet?sslmode=disable",
			want: "postgres://fleet:[REDACTED]@db:5432/fleet?sslmode=disable",
		},
		{
			name: "Bearer header",
			in:   "Authorization: Bearer tok_FAKE0123456789abcdef",
			want: "Authorization: Bearer [REDACTED]",
		},
		{
			name: "lower-case bearer with base64 padding",
			in:   "authorization=bearer dG9rLWZha2UtMTIzNA== retry=1",
			want: "authorization=bearer [REDACTED] retry=1",
		},
		{
			name: "upper-case BEARER",
			in:   "BEARER abcdefgh12345678",
			want: "BEARER [REDACTED]",
		},
		{
			name: "Bearer JWT",
			in:   "Authorization: Bearer " + fakeJWT,
			want: "Authorization: Bearer [REDACTED]",
		},
		{
			name: "Basic credentials",
			in:   "Authorization: Basic ZmxlZXQ6bm90LWEtcmVhbC1wYXNzd29yZA==",
			want: "Authorization: Basic [REDACTED]",
		},
		{
			name: "Bot Discord token",
			in:   "Authorization: Bot " + fakeDiscord,
			want: "Authorization: Bot [REDACTED]",
		},
		{
			name: "bare Discord token",
			in:   fakeDiscord,
			want: Redacted,
		},
		{
			name: "Discord tokens in text",
			in:   "login with " + fakeDiscord2 + " failed, fallback " + fakeDiscord3 + ".",
			want: "login with [REDACTED] failed, fallback [REDACTED].",
		},
		{
			name: "bare Telegram token",
			in:   fakeTelegram,
			want: Redacted,
		},
		{
			name: "Telegram token in a Bot API URL",
			in:   `Post "https://api.telegram.org/bot` + fakeTelegram2 + `/getUpdates": context deadline exceeded`,
			want: `Post "https://api.telegram.org/bot[REDACTED]/getUpdates": context deadline exceeded`,
		},
		{
			name: "bare JWT",
			in:   "session=" + fakeJWT + "; Path=/",
			want: "session=[REDACTED]; Path=/",
		},
		{
			name: "unsigned JWT",
			in:   "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjMifQ. next",
			want: Redacted + " next",
		},
		{
			name: "everything at once",
			in:   "redis://:pw123456@r:6379 Bearer abcdefgh12345678 " + fakeTelegram + " " + fakeDiscord,
			want: "redis://:[REDACTED]@r:6379 Bearer [REDACTED] [REDACTED] [REDACTED]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactString(tt.in); got != tt.want {
				t.Errorf("RedactString(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if !ContainsSecret(tt.in) {
				t.Errorf("ContainsSecret(%q) = false, want true", tt.in)
			}
			if ContainsSecret(tt.want) {
				t.Errorf("ContainsSecret(%q) = true on redacted output, want false", tt.want)
			}
		})
	}
}

// TestRedactStringPairs is the corpus of free-text key-value pairs: the
// value of a pair whose key looks secret is masked in any string, its key,
// separator and quotes kept.
func TestRedactStringPairs(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"the issue's error text", "api_key=sk-X password=Y http://h/?token=Z",
			"api_key=[REDACTED] password=[REDACTED] http://h/?token=[REDACTED]"},
		{"key=value in a sentence", "login failed for bob: password=hunter2 rejected",
			"login failed for bob: password=[REDACTED] rejected"},
		{"spaces around =", "DB_PASSWORD = hunter2", "DB_PASSWORD = [REDACTED]"},
		{"key: value", "token: abc", "token: [REDACTED]"},
		{"a phone number", "sms from phone=+15551234567 refused", "sms from phone=[REDACTED] refused"},
		{"a phone number as JSON", `{"from_phone":"+15551234567"}`, `{"from_phone":"[REDACTED]"}`},
		{"key: value after a tab", "token:\tabc", "token:\t[REDACTED]"},
		{"header", "X-Api-Key: 9f8e7d6c", "X-Api-Key: [REDACTED]"},
		{"cookie header", "Set-Cookie: session=abc123; Path=/; HttpOnly", "Set-Cookie: [REDACTED]; Path=/; HttpOnly"},
		{"double-quoted value", `secret="quoted value" next=1`, `secret="[REDACTED]" next=1`},
		{"single-quoted value with an escape", `client_secret='it\'s a secret' ok`, `client_secret='[REDACTED]' ok`},
		{"unterminated quote", `password="hunter2`, `password="[REDACTED]`},
		{"query parameter", "http://h/?token=Z&x=1", "http://h/?token=[REDACTED]&x=1"},
		{"query parameter, last", "GET https://graph.example.com/me?fields=id&access_token=EAAB1234", "GET https://graph.example.com/me?fields=id&access_token=[REDACTED]"},
		{"query parameter in a Go url.Error", `Get "https://api.example.com/v1?apikey=k-123&q=go": EOF`, `Get "https://api.example.com/v1?apikey=[REDACTED]&q=go": EOF`},
		{"value with URL characters", "password=p@ss:w0rd/x&user=bob", "password=[REDACTED]&user=bob"},
		{"JSON text", `{"user":"bob","password":"hunter2","n":1}`, `{"user":"bob","password":"[REDACTED]","n":1}`},
		{"JSON text with a space", `{"api_key": "k-123"}`, `{"api_key": "[REDACTED]"}`},
		{"JSON text inside JSON text", `{"body":"{\"token\":\"abc\"}"}`, `{"body":"{\"token\":\"[REDACTED]\"}"}`},
		{"JSON value with an escaped quote", `{"password":"a\"b"}`, `{"password":"[REDACTED]"}`},
		{"Python dict", `{'password': 'hunter2', 'user': 'bob'}`, `{'password': '[REDACTED]', 'user': 'bob'}`},
		{"struct printed with %+v", "&{Addr:redis:6379 Username: Password:hunter2 DB:0}", "&{Addr:redis:6379 Username: Password:[REDACTED] DB:0}"},
		{"last field of a struct", "&{Addr:redis:6379 Password:hunter2}", "&{Addr:redis:6379 Password:[REDACTED]}"},
		{"map printed with %v", "map[region:eu secret:s3 user:bob]", "map[region:eu secret:[REDACTED] user:bob]"},
		{"last entry of a map", "map[region:eu token:t1]", "map[region:eu token:[REDACTED]]"},
		{"in parentheses", "(password=hunter2)", "(password=[REDACTED])"},
		{"brackets in the value", "password=a[b]c}", "password=[REDACTED]}"},
		{"Authorization keeps its scheme", "authorization: Bearer abc", "authorization: Bearer [REDACTED]"},
		{"GitHub token scheme", "Authorization: token ghp_abc", "Authorization: token [REDACTED]"},
		{"Authorization quoted", `authorization="Basic Zm9vOmJhcg=="`, `authorization="[REDACTED]"`},
		{"key containing a pattern", "upstream refresh-token=rt_1 ok", "upstream refresh-token=[REDACTED] ok"},
		{"in a short value", "token=x", "token=[REDACTED]"},
		{"with other secrets", "redis://:pw1@r:6379 password=pw2 Bearer abcdefgh12345678",
			"redis://:[REDACTED]@r:6379 password=[REDACTED] Bearer [REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactString(tt.in); got != tt.want {
				t.Errorf("RedactString(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if !ContainsSecret(tt.in) {
				t.Errorf("ContainsSecret(%q) = false, want true", tt.in)
			}
			if ContainsSecret(tt.want) {
				t.Errorf("ContainsSecret(%q) = true on redacted output, want false", tt.want)
			}
		})
	}
}

// innocents look like secrets to a careless scanner but are not.
var innocents = []struct{ name, in string }{
	{"URL without userinfo", "https://example.com/bots?page=2#top"},
	{"redis URL without password", "redis://redis:6379/0"},
	{"URL with user only", "ssh://git@github.com/botfleet/botfleet.git"},
	{"URL with empty password", "https://user:@example.com/"},
	{"already redacted URL", "redis://:[REDACTED]@cache:6379/0"},
	{"@ in the path", "https://example.com/users/@alice:matrix.org"},
	{"@ after the query", "https://example.com/?to=user:a@b.c"},
	{"IPv6 URL", "http://[::1]:9090/metrics"},
	{"email", "user@example.com"},
	{"mailto", "mailto:ops@example.com"},
	{"host and port with user", "worker-3@host-a:9000"},
	{"time", "12:30:45"},
	{"timestamp", "2024-01-02T03:04:05.123456789Z"},
	{"unix time before a colon", "1700000000:ok"},
	{"version", "1.2.3"},
	{"UUID", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
	{"job id", "browser.navigate.k3f9x2"},
	{"sentence with dots", "The bot started. It claimed 3 jobs, e.g. browser.navigate. Then it stopped..."},
	{"container id", idDockerV1},
	{"container path", "/var/lib/docker/containers/" + idDockerV1 + "/hostname"},
	{"Bot name", "Bot eu-west-7 started"},
	{"Bot with job id", "Bot browser.navigate.k3f9x2 claimed job 42 from queue default"},
	{"Bearer in prose", "Bearer token missing"},
	{"Bearer at end", "scheme Bearer "},
	{"Bearer inside a word", "Forbearer abcdefghijklmnop"},
	{"Basic in prose", "Basic setup done"},
	{"11-digit id before a colon", "12345678901:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"},
	{"7-digit id before a colon", "1234567:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"},
	{"secret not starting with A", "123456789:aAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"},
	{"36 characters after the id", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawXY"},
	{"33 characters after the id", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDs"},
	{"Discord shape, first segment too short", "MTA4NzY1NDMyMTA5ODc2NT.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"},
	{"Discord shape, wrong first letter", "ATA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"},
	{"Discord shape, short HMAC", "MTA4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz"},
	{"dotted base64 without eyJ", "aGVsbG8gd29ybGQ.aGVsbG8gd29ybGQ.aGVsbG8"},
	{"empty", ""},
	{"short", "a://"},
	// Pairs whose key is not secret, or which are not pairs.
	{"status pair", "status=ok"},
	{"time pair", "time: 5s"},
	{"key that ends in key", "monkey=1"},
	{"key named key", "key=value"},
	{"pairs in a sentence", "retrying job echo.k3f9x2: attempt=2 max_retries=5 backoff: 1.5s"},
	{"query without secrets", "https://example.com/bots?page=2&sort=asc&key=id"},
	{"error with host and port", "dial tcp 10.0.0.7:6379: connect: connection refused"},
	{"host named like a key", "token-service:8080"},
	{"URL of a host named like a key", "https://secrets.example.com:8443/v1/health"},
	{"pattern words without a separator", "password reset mail sent; token expired"},
	{"separator after a pattern word", "password reset: sent"},
	{"empty value", "password=&user=bob"},
	{"empty value at the end", "password="},
	{"empty quoted value", `password=""`},
	{"masked value", "password=[REDACTED] token: [REDACTED]"},
	{"comparison", "token == expected"},
	{"JSON number under a secret key", `{"token_count":5,"max_tokens":1024}`},
	{"JSON object under a secret key", `{"secret":{"name":"db"}}`},
	{"user info without a password", "ssh://token@example.com"},
}

func TestRedactStringInnocent(t *testing.T) {
	for _, tt := range innocents {
		t.Run(tt.name, func(t *testing.T) {
			if ContainsSecret(tt.in) {
				t.Errorf("ContainsSecret(%q) = true, want false", tt.in)
			}
			if got := RedactString(tt.in); got != tt.in {
				t.Errorf("RedactString(%q) = %q, want it unchanged", tt.in, got)
			}
		})
	}
}

func TestRedactStringNoAllocWithoutSecret(t *testing.T) {
	for _, tt := range innocents {
		in := tt.in
		if n := testing.AllocsPerRun(100, func() { _ = RedactString(in) }); n != 0 {
			t.Errorf("RedactString(%q) allocates %v times, want 0", in, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = ContainsSecret(in) }); n != 0 {
			t.Errorf("ContainsSecret(%q) allocates %v times, want 0", in, n)
		}
	}
	in := "Authorization: Bot " + fakeDiscord
	if n := testing.AllocsPerRun(100, func() { _ = ContainsSecret(in) }); n != 0 {
		t.Errorf("ContainsSecret(%q) allocates %v times, want 0", in, n)
	}
}

func TestSecretKey(t *testing.T) {
	secret := []string{
		"password", "PASSWORD", "db_password", "DB-Password", "passwd", "secret",
		"client_secret", "SECRET_KEY_BASE", "token", "access_token", "refresh-token",
		"csrfToken", "tokens", "max_tokens", "token_count", "api_key", "apikey",
		"X-Api-Key", "apiKey", "API KEY", "authorization", "Proxy-Authorization",
		"cookie", "Set-Cookie", "cookies", "private_key", "privateKey", "PRIVATE-KEY",
		"ssh.private_key", "a_p-a s_s_w-o-r-d", "phone", "from_phone", "PhoneNumber",
	}
	public := []string{
		"", "user", "username", "job_id", "message", "msg", "key", "author", "auth",
		"pass", "api", "private", "secre", "toke", "id", "worker_id", "hostname",
		"public_key", "keyboard", "bypass",
	}
	// Keys longer than SecretKey's buffer take another path.
	long := strings.Repeat("nested_group_", 6)
	secret = append(secret, long+"db_password", long+"Pass-Word")
	public = append(public, long+"job_id", long+"pass", "PASS"+long+"WORD")
	r := NewRedactor(nil)
	for _, k := range secret {
		if !r.SecretKey(k) {
			t.Errorf("SecretKey(%q) = false, want true", k)
		}
		if !r.mayBeSecret(letterSet(k)) {
			t.Errorf("mayBeSecret(letters of %q) = false, want true", k)
		}
	}
	for _, k := range public {
		if r.SecretKey(k) {
			t.Errorf("SecretKey(%q) = true, want false", k)
		}
	}
	var nilRedactor *Redactor
	if !nilRedactor.SecretKey("db_password") || nilRedactor.SecretKey("job_id") {
		t.Error("nil Redactor does not use DefaultSecretKeys")
	}
	var zero Redactor
	if !zero.SecretKey("db_password") || zero.SecretKey("job_id") {
		t.Error("zero Redactor does not use DefaultSecretKeys")
	}
}

func TestNewRedactorExtraKeys(t *testing.T) {
	r := NewRedactor([]string{"session-id", " ", "", "x", "-_-", "Signature", "PASSWORD"})
	tests := []struct {
		key  string
		want bool
	}{
		{"SessionID", true},
		{"session_id", true},
		{"x_signature", true},
		{"password", true},
		{"session", false},
		{"job_id", false},
		{"x_ray", false},
	}
	for _, tt := range tests {
		if got := r.SecretKey(tt.key); got != tt.want {
			t.Errorf("SecretKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
	if d := NewRedactor(nil); d.SecretKey("SessionID") {
		t.Error("extra keys leaked into another Redactor")
	}
}

// FuzzSecretKeyLetters checks the letter filter never rules out a key
// SecretKey finds secret, with the default keys and with extra ones.
func FuzzSecretKeyLetters(f *testing.F) {
	for _, k := range []string{"db_password", "X-Api-Key", "SessionID", "x509_cert", "job_id", "a_p-a s_s_w-o-r-d", "99"} {
		f.Add(k)
	}
	redactors := []*Redactor{NewRedactor(nil), NewRedactor([]string{"session-id", "x509", "9_9"})}
	f.Fuzz(func(t *testing.T, k string) {
		for _, r := range redactors {
			if r.SecretKey(k) && !r.mayBeSecret(letterSet(k)) {
				t.Fatalf("mayBeSecret rules out %q, which SecretKey finds secret", k)
			}
		}
	})
}

func TestSecretKeyNoAlloc(t *testing.T) {
	r := NewRedactor([]string{"session_id"})
	for _, k := range []string{"job_id", "X-Api-Key", "a_rather_long_attribute_key_without_anything"} {
		if n := testing.AllocsPerRun(100, func() { _ = r.SecretKey(k) }); n != 0 {
			t.Errorf("SecretKey(%q) allocates %v times, want 0", k, n)
		}
	}
}

func FuzzRedactString(f *testing.F) {
	for _, tt := range innocents {
		f.Add(tt.in)
	}
	for _, s := range []string{
		"redis://:pw@h", "x://u:p@q@r", "Bearer abcdefgh", "Bot " + fakeDiscord,
		fakeDiscord, fakeTelegram, fakeJWT, "bot" + fakeTelegram + "/x",
		"a://:" + fakeTelegram + "@h", "Bearer " + fakeDiscord + "." + fakeJWT,
		"api_key=sk-X password=Y http://h/?token=Z", "token: abc", `secret="quoted value"`,
		`{"password":"a\"b"}`, `{"body":"{\"token\":\"x\"}"}`, "{Addr:r:1 Password:pw}",
		"Authorization: token abc", `password='it\'s`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := RedactString(s)
		if !ContainsSecret(s) {
			if got != s {
				t.Fatalf("ContainsSecret(%q) = false but RedactString changed it to %q", s, got)
			}
			return
		}
		if got == s {
			t.Fatalf("ContainsSecret(%q) = true but RedactString left it unchanged", s)
		}
		// Not checked: that ContainsSecret(got) is false. Masking can cut a
		// run of characters so that a neighbour newly fits a token's exact
		// length ("<8 digits>:A<42 chars>" is no Telegram token, but its
		// first 35 characters are once the rest is masked); that reveals
		// nothing the input did not.
		scanSecrets(s, allTriggers, func(lo, hi int) bool {
			secret := s[lo:hi]
			// A secret that is part of "[REDACTED]" or could straddle it
			// cannot be told apart from the mask itself.
			if strings.ContainsAny(secret, "[]") || strings.Contains(Redacted, secret) {
				return true
			}
			// Each occurrence of the secret left in the output lies in
			// text kept from the input, and the masked one is gone.
			if occurrences(got, secret) >= occurrences(s, secret) {
				t.Errorf("RedactString(%q) = %q leaks %q", s, got, secret)
			}
			return true
		})
	})
}

// occurrences counts the possibly overlapping occurrences of sub in s.
func occurrences(s, sub string) int {
	n := 0
	for i := 0; ; i++ {
		j := strings.Index(s[i:], sub)
		if j < 0 {
			return n
		}
		n++
		i += j
	}
}

// Typical string values and keys of a log record.
var (
	benchStrings = []struct{ name, s string }{
		{"message", "job claimed by worker"},
		{"job_id", "browser.navigate.k3f9x2"},
		{"error", "dial tcp 10.0.0.7:6379: connect: connection refused"},
		{"url", "https://api.example.com/v1/bots/42/status?verbose=1"},
		{"sentence", "Bot eu-west-7 finished job browser.navigate.k3f9x2 in 1.25s"},
		{"bearer", "Authorization: Bearer tok_FAKE0123456789abcdef"},
		{"fields", "retrying job echo.k3f9x2: attempt=2 max_retries=5 backoff: 1.5s"},
		{"status", "status=ok"},
		{"password", "auth failed: password=hunter2"},
	}
	benchKeys = []string{"msg", "job_id", "worker_id", "duration_ms", "error", "X-Request-Id", "db_password"}
)

func BenchmarkContainsSecret(b *testing.B) {
	for _, bs := range benchStrings {
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ContainsSecret(bs.s)
			}
		})
	}
}

func BenchmarkRedactString(b *testing.B) {
	s := `Get "https://admin:T0ps3cret@api.example.com/v1/bots": dial tcp 10.0.0.1:443: connect: connection refused`
	b.ReportAllocs()
	for b.Loop() {
		RedactString(s)
	}
}

func BenchmarkSecretKey(b *testing.B) {
	r := NewRedactor(nil)
	for _, k := range benchKeys {
		b.Run(k, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.SecretKey(k)
			}
		})
	}
}
