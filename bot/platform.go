package bot

import (
	"errors"
	"net/http"
	"net/url"
)

// UndeliverableStatus returns ErrUndeliverable for an HTTP status from a
// chat platform's API that retrying cannot change (a 4xx other than 429:
// the user blocked the bot, a token expired, a number unsubscribed), and
// nil for one worth retrying. The frontends' APIError.Unwrap use it.
func UndeliverableStatus(status int) error {
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		return ErrUndeliverable
	}
	return nil
}

// SendPlatform sends req with hc. A transport error comes back without its
// URL, which may hold a bot token, an interaction token or a phone
// number, so that it can be logged.
func SendPlatform(hc *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	return resp, nil
}
