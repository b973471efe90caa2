package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// platformTimeout bounds a platform registration command's API calls.
const platformTimeout = 30 * time.Second

// unset names each of the variables a command needs that is unset.
func unset(env *Env, names ...string) error {
	var errs []error
	for _, n := range names {
		if strings.TrimSpace(env.Getenv(n)) == "" {
			errs = append(errs, fmt.Errorf("%s is unset: this command needs it", n))
		}
	}
	return errors.Join(errs...)
}

// publicURL checks a URL a platform is to call: absolute, http or https.
func publicURL(flag, v string) error {
	u, err := url.Parse(v)
	if v == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("-%s %q: want the public https:// URL the platform is to call", flag, v)
	}
	return nil
}
