package config

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/botfleet/botfleet/logging"
)

// URL returns the variable as an http:// or https:// URL with a host,
// without a trailing '/', or def when it is unset: a platform API's base
// URL (TELEGRAM_API_URL) or a public URL (SMS_PUBLIC_URL).
func (l *Loader) URL(name, def string) string {
	v := l.String(name, "")
	if v == "" {
		return def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		l.Bad(name, logging.RedactString(v), "an http:// or https:// URL with a host, such as https://api.example.com")
		return def
	}
	return strings.TrimSuffix(v, "/")
}

// Secret returns the variable when it matches pattern, "" when it is
// unset. A value that does not match is reported masked, with want: a
// token must not reach a terminal or a log even when it is wrong.
func (l *Loader) Secret(name string, pattern *regexp.Regexp, want string) string {
	v := l.String(name, "")
	if v != "" && !pattern.MatchString(v) {
		l.Bad(name, logging.Redacted, want)
		return ""
	}
	return v
}

// Requires reports name missing when it is unset while one of
// dependents, which only make sense with it, is set.
func (l *Loader) Requires(name string, dependents ...string) {
	if l.Set(name) {
		return
	}
	for _, d := range dependents {
		if l.Set(d) {
			l.Bad(name, "", "a value, since "+d+" is set")
			return
		}
	}
}
