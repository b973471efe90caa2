package sms_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botfleet/botfleet/bot"
	"github.com/botfleet/botfleet/bot/sms"
	"github.com/botfleet/botfleet/internal/chattest"
)

const (
	sid          = "AC0123456789abcdef0123456789abcdef"
	authToken    = "0123456789abcdef0123456789abcdef"
	ourNumber    = "+16505558225"
	userNumber   = "+16505551199"
	messagesPath = "/2010-04-01/Accounts/" + sid + "/Messages.json"
)

func TestSignatureAsTwilioDocumentsIt(t *testing.T) {
	// The example of https://www.twilio.com/docs/usage/security: a URL
	// with a query string, parameters signed in name order.
	params := url.Values{"To": {"+18005551212"}, "Digits": {"1234"}, "Caller": {"+14158675310"},
		"From": {"+14158675310"}, "CallSid": {"CA1234567890ABCDE"}}
	const docURL, docSig = "https://mycompany.com/myapp.php?foo=1&bar=2", "GvWf1cFY/Q7PnoempGyD5oXAezc="
	if got := sms.Signature("12345", docURL, params); got != docSig {
		t.Fatalf("Signature = %q, want Twilio's %q", got, docSig)
	}
	tests := []struct {
		name, url string
		params    url.Values
		sig       string
		want      bool
	}{
		{"documented", docURL, params, docSig, true},
		{"standard port written", "https://mycompany.com:443/myapp.php?foo=1&bar=2", params, docSig, true},
		{"another port", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", params, docSig, false},
		{"query changed", "https://mycompany.com/myapp.php?foo=1&bar=3", params, docSig, false},
		{"a parameter changed", docURL, url.Values{"To": {"+18005551213"}, "Digits": {"1234"}, "Caller": {"+14158675310"},
			"From": {"+14158675310"}, "CallSid": {"CA1234567890ABCDE"}}, docSig, false},
		{"missing", docURL, params, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sms.ValidSignature("12345", tt.url, tt.params, tt.sig); got != tt.want {
				t.Errorf("ValidSignature = %v, want %v", got, tt.want)
			}
		})
	}
	// Values of one name are signed in order too.
	if sms.Signature("k", "https://h/", url.Values{"A": {"2", "1"}}) != sms.Signature("k", "https://h/A1A2", nil) {
		t.Error("the values of a repeated parameter are not signed sorted")
	}
}

// fakeTwilio stands in for the Messages API: 201 and the message
// resource for a request with the account's credentials, 401 without,
// 400 with error 21610 for a number that sent STOP to Twilio.
func fakeTwilio(t *testing.T) *chattest.API {
	t.Helper()
	api := chattest.NewAPI(t)
	var n atomic.Int64
	api.Handle("POST "+messagesPath, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != sid || p != authToken {
			answer(w, http.StatusUnauthorized, `{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`)
			return
		}
		if r.PostFormValue("To") == "+16505550000" {
			answer(w, http.StatusBadRequest, `{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}`)
			return
		}
		answer(w, http.StatusCreated, fmt.Sprintf(`{"sid": "SM%032d", "account_sid": %q, "to": %q, "from": %q, "body": %q, "status": "queued", "num_segments": "1"}`,
			n.Add(1), sid, r.PostFormValue("To"), r.PostFormValue("From"), r.PostFormValue("Body")))
	})
	return api
}

func answer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// incoming is an incoming SMS's parameters, form-encoded in the order
// Twilio posts them (not sorted by name).
func incoming(messageSID, from, body string) string {
	pairs := [][2]string{{"ToCountry", "US"}, {"ToState", "CA"}, {"SmsMessageSid", messageSID}, {"NumMedia", "0"},
		{"ToCity", "SAN BRUNO"}, {"FromZip", "94030"}, {"SmsSid", messageSID}, {"FromState", "CA"}, {"SmsStatus", "received"},
		{"Body", body}, {"FromCountry", "US"}, {"To", ourNumber}, {"NumSegments", "1"}, {"MessageSid", messageSID},
		{"AccountSid", sid}, {"From", from}, {"ApiVersion", "2010-04-01"}}
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p[0]) + "=" + url.QueryEscape(p[1]))
	}
	return b.String()
}

// post sends body to target, signed by token for signedURL (no signature
// when token is ""), and returns the status and the TwiML message.
func post(t *testing.T, target, signedURL, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		form, _ := url.ParseQuery(body)
		req.Header.Set(sms.SignatureHeader, sms.Signature(token, signedURL, form))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
		t.Errorf("Content-Type %q, want TwiML", ct)
	}
	var twiml struct {
		XMLName  xml.Name `xml:"Response"`
		Messages []string `xml:"Message"`
	}
	if err := xml.Unmarshal(b, &twiml); err != nil || len(twiml.Messages) > 1 {
		t.Fatalf("not a TwiML response of at most one message: %s", b)
	}
	return resp.StatusCode, strings.Join(twiml.Messages, "")
}

func newFrontend(t *testing.T, e *chattest.Env, api *chattest.API, publicURL string) *sms.Frontend {
	t.Helper()
	f, err := sms.New(e.Deps(sms.Name, bot.ChatOptions{PollInterval: 10 * time.Millisecond}),
		sms.Options{AuthToken: authToken, AccountSID: sid, From: ourNumber, PublicURL: publicURL, APIURL: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFromEnv(t *testing.T) {
	ok := map[string]string{"TWILIO_AUTH_TOKEN": authToken, "TWILIO_ACCOUNT_SID": sid, "TWILIO_FROM_NUMBER": ourNumber,
		"SMS_PUBLIC_URL": "https://bot.example.com/sms/twilio"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		errs []string
	}{
		{"nothing set: off", nil, nil},
		{"all set", ok, nil},
		{"no account", with("TWILIO_ACCOUNT_SID", ""), []string{`TWILIO_ACCOUNT_SID="": want a value, since TWILIO_AUTH_TOKEN is set`}},
		{"bad number", with("TWILIO_FROM_NUMBER", "650 555 8225"), []string{`TWILIO_FROM_NUMBER="650 555 8225": want the account's phone number in E.164`}},
		{"bad token, masked", with("TWILIO_AUTH_TOKEN", "hunter2"), []string{`TWILIO_AUTH_TOKEN="[REDACTED]"`}},
		{"public URL without the rest", map[string]string{"SMS_PUBLIC_URL": "https://bot.example.com/sms/twilio"},
			[]string{`TWILIO_AUTH_TOKEN="": want a value, since SMS_PUBLIC_URL is set`}},
		{"bad public URL", with("SMS_PUBLIC_URL", "bot.example.com"), []string{`SMS_PUBLIC_URL="bot.example.com"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := sms.FromEnv(func(k string) string { return tt.env[k] })
			if (err != nil) != (len(tt.errs) > 0) {
				t.Fatalf("error %v, want one saying %q", err, tt.errs)
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if err == nil && o.Enabled() != (tt.env != nil) {
				t.Errorf("Enabled() = %v", o.Enabled())
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestWebhookRefusesBadSignatures(t *testing.T) {
	e := chattest.New(t)
	api := fakeTwilio(t)
	base := chattest.Serve(t, newFrontend(t, e, api, ""))
	target := base + sms.WebhookPath
	body := incoming("SM1", userNumber, "run echo")
	tests := []struct{ name, signedURL, token, body string }{
		{"unsigned", target, "", body},
		{"another token", target, "fedcba9876543210fedcba9876543210", body},
		{"another URL", "https://evil.example.com" + sms.WebhookPath, authToken, body},
		{"body changed after signing", target, authToken, "tampered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.token != "" {
				form, _ := url.ParseQuery(tt.body)
				req.Header.Set(sms.SignatureHeader, sms.Signature(tt.token, tt.signedURL, form))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("got %d, want 403", resp.StatusCode)
			}
		})
	}
	if n := e.RDB.XLen(context.Background(), "jobs:default").Val(); n != 0 {
		t.Errorf("%d jobs queued by refused requests", n)
	}
	if n := len(api.Calls("")) + len(e.Records("message_received")); n != 0 {
		t.Errorf("refused requests reached the API or the logs %d times", n)
	}
	if got := e.Counter(t, "bot_frontend_requests_total", "frontend", sms.Name, "code", "403"); got != float64(len(tests)) {
		t.Errorf("bot_frontend_requests_total{code=403} = %v, want %d", got, len(tests))
	}
}

func TestWebhookSignedForItsPublicURL(t *testing.T) {
	e := chattest.New(t)
	api := fakeTwilio(t)
	const public = "https://bot.example.com/sms/twilio"
	base := chattest.Serve(t, newFrontend(t, e, api, public))
	// Behind the proxy, the bot is reached at another URL; Twilio signed
	// the public one, with the query string it was configured with.
	target := base + sms.WebhookPath + "?tenant=blue&b=2"
	if code, msg := post(t, target, public+"?tenant=blue&b=2", authToken, incoming("SM10", userNumber, "help")); code != 200 || !strings.HasPrefix(msg, "Commands:") {
		t.Errorf("signed for the public URL: %d %q", code, msg)
	}
	if code, _ := post(t, target, target, authToken, incoming("SM11", userNumber, "help")); code != http.StatusForbidden {
		t.Errorf("signed for the bot's own URL behind the proxy: %d, want 403", code)
	}
}

func TestKeywordsAndRedelivery(t *testing.T) {
	e := chattest.New(t)
	api := fakeTwilio(t)
	target := chattest.Serve(t, newFrontend(t, e, api, "")) + sms.WebhookPath
	n := 0
	text := func(body string) string {
		t.Helper()
		n++
		code, msg := post(t, target, target, authToken, incoming(fmt.Sprintf("SM%d", n), userNumber, body))
		if code != 200 {
			t.Fatalf("%q: %d", body, code)
		}
		return msg
	}
	ctx := context.Background()

	queued := text("run echo")
	id := strings.TrimSuffix(strings.Fields(queued)[2], ".")
	if !strings.HasPrefix(id, "echo.") {
		t.Fatalf("run answered %q", queued)
	}
	if code, msg := post(t, target, target, authToken, incoming(fmt.Sprintf("SM%d", n), userNumber, "run echo")); code != 200 || msg != "" {
		t.Errorf("a redelivered message: %d %q, want an empty answer", code, msg)
	}
	if got := text(" stop "); !strings.Contains(got, "no more messages") {
		t.Errorf("STOP answered %q", got)
	}
	if got := text("status") + text("HELP") + text("run echo"); got != "" {
		t.Errorf("a stopped number was answered %q", got)
	}
	if n := e.RDB.XLen(ctx, "jobs:default").Val(); n != 1 {
		t.Errorf("%d jobs queued, want the one before STOP", n)
	}
	// The job started before STOP ends: its result is not sent.
	if err := e.RDB.HSet(ctx, "job:"+id, "status", "succeeded", "result", "{}").Err(); err != nil {
		t.Fatal(err)
	}
	chattest.WaitFor(t, "the reply owed settled", func() bool { return e.RDB.ZCard(ctx, "bot:replies:"+sms.Name).Val() == 0 })
	if calls := api.Calls(messagesPath); len(calls) != 0 {
		t.Errorf("a stopped number was sent %d messages", len(calls))
	}
	if got := text("Start"); !strings.Contains(got, "again") {
		t.Errorf("START answered %q", got)
	}
	if got := text("info"); !strings.HasPrefix(got, "Commands:") {
		t.Errorf("INFO answered %q", got)
	}
	if got := e.Counter(t, "bot_frontend_messages_total", "frontend", sms.Name, "command", "ignored"); got != 3 {
		t.Errorf(`bot_frontend_messages_total{command="ignored"} = %v, want 3`, got)
	}
	e.NoneContains(t, userNumber, strings.TrimPrefix(userNumber, "+"))
}

func TestEndToEnd(t *testing.T) {
	e := chattest.New(t)
	api := fakeTwilio(t)
	chattest.StartWorker(t, e.RDB, "worker-sms")
	base, reg := e.StartBot(t, bot.ChatOptions{PollInterval: 20 * time.Millisecond}, func(b *bot.Bot) error {
		f, err := sms.New(b.Deps(sms.Name), sms.Options{AuthToken: authToken, AccountSID: sid, From: ourNumber, APIURL: api.URL})
		if err != nil {
			return err
		}
		return b.Add(f)
	})
	target := base + sms.WebhookPath
	code, msg := post(t, target, target, authToken, incoming("SM42", userNumber, `run echo {"message": "hello fleet"}`))
	id := strings.TrimSuffix(strings.Fields(msg + " x x")[2], ".")
	if code != 200 || !strings.HasPrefix(id, "echo.") {
		t.Fatalf("webhook: %d %q, want TwiML saying the job is queued", code, msg)
	}
	call := api.WaitCalls(t, messagesPath, 1)[0]
	form, _ := url.ParseQuery(string(call.Body))
	want := fmt.Sprintf(`Job %s succeeded: {"message":"hello fleet"}`, id)
	if form.Get("To") != userNumber || form.Get("From") != ourNumber || form.Get("Body") != want {
		t.Errorf("Messages API call %v, want %q to %s from %s", form, want, userNumber, ourNumber)
	}
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"bot_frontend_requests_total", []string{"frontend", sms.Name, "code", "200"}},
		{"bot_jobs_submitted_total", []string{"frontend", sms.Name, "type", "echo"}},
		{"bot_frontend_jobs_total", []string{"frontend", sms.Name, "status", "succeeded"}},
	} {
		if got := chattest.Counter(t, reg, c.name, c.labels...); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, got)
		}
	}
	chattest.WaitFor(t, "both reply_sent records", func() bool { return len(e.Records("reply_sent")) == 2 })
	for _, r := range append(e.Records("message_received"), e.Records("reply_sent")...) {
		if r.Attrs["service"] != sms.Name {
			t.Errorf("%s record %v, want service %s", r.Message, r.Attrs, sms.Name)
		}
	}
	e.NoneContains(t, userNumber, strings.TrimPrefix(userNumber, "+"), authToken)
}

func TestUnsubscribedAtTwilioIsStopped(t *testing.T) {
	e := chattest.New(t)
	api := fakeTwilio(t)
	target := chattest.Serve(t, newFrontend(t, e, api, "")) + sms.WebhookPath
	const gone = "+16505550000" // Twilio answers 21610 for it
	_, msg := post(t, target, target, authToken, incoming("SM1", gone, "run echo"))
	id := strings.TrimSuffix(strings.Fields(msg)[2], ".")
	ctx := context.Background()
	e.RDB.HSet(ctx, "job:"+id, "status", "succeeded", "result", "{}")
	api.WaitCalls(t, messagesPath, 1)
	chattest.WaitFor(t, "the reply dropped", func() bool { return e.RDB.ZCard(ctx, "bot:replies:"+sms.Name).Val() == 0 })
	if code, msg := post(t, target, target, authToken, incoming("SM2", gone, "status")); code != 200 || msg != "" {
		t.Errorf("a number Twilio reports unsubscribed was answered: %d %q", code, msg)
	}
	if n := len(api.Calls(messagesPath)); n != 1 {
		t.Errorf("%d Messages API calls, want 1 (21610 is not retried)", n)
	}
}

func TestAPIErrorMasksNumbers(t *testing.T) {
	e := &sms.APIError{Status: 400, Code: 21211, Message: "The 'To' number +1 (650) 555-1199 is not a valid phone number."}
	if got, want := e.Error(), "twilio: HTTP 400: The 'To' number [number] is not a valid phone number. (error 21211)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
