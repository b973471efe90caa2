package sms

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/botfleet/botfleet/bot"
)

// Signature returns what Twilio sends in X-Twilio-Signature for a request
// to fullURL (scheme, host, path and query string, as Twilio called it)
// with the POST parameters params: the Base64 HMAC-SHA1, keyed by the auth
// token, of the URL followed by each parameter's name and value, sorted by
// name (values of one name sorted too).
func Signature(authToken, fullURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, v := range values {
			b.WriteString(name)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether sig is Twilio's signature of a request
// to fullURL with params. The URL is tried as given and with its standard
// port written or left out, as Twilio's own validators do, since a proxy
// may add or drop it.
func ValidSignature(authToken, fullURL string, params url.Values, sig string) bool {
	if sig == "" {
		return false
	}
	for _, u := range urlForms(fullURL) {
		if hmac.Equal([]byte(Signature(authToken, u, params)), []byte(sig)) {
			return true
		}
	}
	return false
}

// urlForms returns u, and u with its scheme's standard port toggled.
func urlForms(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return []string{raw}
	}
	std := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	other := *u
	switch host, port, err := net.SplitHostPort(u.Host); {
	case err != nil && std != "": // no port: add the standard one
		other.Host = net.JoinHostPort(u.Hostname(), std)
	case err == nil && port == std:
		other.Host = host
		if strings.Contains(host, ":") { // IPv6
			other.Host = "[" + host + "]"
		}
	default:
		return []string{raw}
	}
	return []string{raw, other.String()}
}

// APIError is Twilio's answer to a call that failed. It wraps
// bot.ErrUndeliverable for the 4xx answers other than 429 (an unsubscribed
// recipient, 21610; a number that cannot take SMS; bad credentials):
// trying again cannot help.
type APIError struct {
	Status  int    // the HTTP status
	Code    int    // Twilio's error code
	Message string // Twilio's words
}

// CodeUnsubscribed is Twilio's error for a recipient who replied STOP.
const CodeUnsubscribed = 21610

// Error masks the phone numbers Twilio's messages quote ("The 'To'
// number +15005550001 is not a valid phone number."), since errors are
// logged.
func (e *APIError) Error() string {
	return fmt.Sprintf("twilio: HTTP %d: %s (error %d)", e.Status, phoneNumber.ReplaceAllString(e.Message, "[number]"), e.Code)
}

// phoneNumber matches what may be a phone number in free text: 6 digits
// or more, with the separators people write.
var phoneNumber = regexp.MustCompile(`\+?[0-9][0-9 ().-]{4,}[0-9]`)

// Unwrap returns bot.ErrUndeliverable when retrying cannot help.
func (e *APIError) Unwrap() error { return bot.UndeliverableStatus(e.Status) }

// maxResponse bounds an API answer.
const maxResponse = 1 << 20

// Client calls Twilio's REST API for one account. It is safe for
// concurrent use.
type Client struct {
	base, sid, token, from string
	hc                     *http.Client
}

// NewClient returns a client of the API at o.APIURL for o's account.
func NewClient(o Options) *Client {
	o = o.withDefaults()
	return &Client{base: o.APIURL, sid: o.AccountSID, token: o.AuthToken, from: o.From, hc: o.HTTPClient}
}

func (c *Client) do(ctx context.Context, method, path string, form url.Values, result any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/2010-04-01/Accounts/"+c.sid+path, body)
	if err != nil {
		return errors.New("twilio: bad TWILIO_API_URL")
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(c.sid, c.token)
	resp, err := bot.SendPlatform(c.hc, req)
	if err != nil {
		return fmt.Errorf("twilio: %s: %w", method, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode/100 != 2 {
		e := &APIError{Status: resp.StatusCode}
		var r struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if dec.Decode(&r) == nil {
			e.Code, e.Message = r.Code, r.Message
		}
		return e
	}
	if result != nil {
		if err := dec.Decode(result); err != nil {
			return fmt.Errorf("twilio: HTTP %d: %w", resp.StatusCode, err)
		}
	}
	return nil
}

// Send sends body to the number to from the account's number.
func (c *Client) Send(ctx context.Context, to, body string) error {
	return c.do(ctx, http.MethodPost, "/Messages.json", url.Values{"To": {to}, "From": {c.from}, "Body": {body}}, nil)
}

// SetWebhook makes Twilio post the messages that reach the account's
// number (TWILIO_FROM_NUMBER) to smsURL. It returns the number's SID.
func (c *Client) SetWebhook(ctx context.Context, smsURL string) (string, error) {
	var list struct {
		Numbers []struct {
			SID         string `json:"sid"`
			PhoneNumber string `json:"phone_number"`
		} `json:"incoming_phone_numbers"`
	}
	if err := c.do(ctx, http.MethodGet, "/IncomingPhoneNumbers.json?"+url.Values{"PhoneNumber": {c.from}}.Encode(), nil, &list); err != nil {
		return "", err
	}
	if len(list.Numbers) == 0 {
		return "", errors.New("twilio: TWILIO_FROM_NUMBER is not a phone number of the account")
	}
	sid := list.Numbers[0].SID
	return sid, c.do(ctx, http.MethodPost, "/IncomingPhoneNumbers/"+sid+".json", url.Values{"SmsUrl": {smsURL}, "SmsMethod": {"POST"}}, nil)
}
