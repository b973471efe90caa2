package config

import (
	"regexp"
	"strings"
	"testing"
)

func TestPlatformVariables(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		read func(l *Loader) string
		want string
		err  string
	}{
		{"URL unset", nil, func(l *Loader) string { return l.URL("API_URL", "https://api.example.com") }, "https://api.example.com", ""},
		{"URL, trailing slash dropped", map[string]string{"API_URL": "http://127.0.0.1:81/base/"},
			func(l *Loader) string { return l.URL("API_URL", "") }, "http://127.0.0.1:81/base", ""},
		{"URL without a scheme", map[string]string{"API_URL": "api.example.com"},
			func(l *Loader) string { return l.URL("API_URL", "d") }, "d", `API_URL="api.example.com": want an http:// or https:// URL`},
		{"URL with a password, masked", map[string]string{"API_URL": "https://u:hunter2@h"},
			func(l *Loader) string { return l.URL("API_URL", "d") }, "d", `API_URL="https://u:[REDACTED]@h"`},
		{"secret", map[string]string{"TOKEN": "abc"},
			func(l *Loader) string { return l.Secret("TOKEN", regexp.MustCompile(`^[a-z]+$`), "letters") }, "abc", ""},
		{"bad secret, masked", map[string]string{"TOKEN": "ABC1"},
			func(l *Loader) string { return l.Secret("TOKEN", regexp.MustCompile(`^[a-z]+$`), "letters") }, "", `TOKEN="[REDACTED]": want letters`},
		{"required by another", map[string]string{"B": "x"},
			func(l *Loader) string { l.Requires("A", "C", "B"); return "" }, "", `A="": want a value, since B is set`},
		{"not required", map[string]string{"A": "x", "B": "y"},
			func(l *Loader) string { l.Requires("A", "B"); return "" }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(func(k string) string { return tt.env[k] })
			got := tt.read(l)
			err := l.Err()
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got %q, %v; want %q, an error saying %q", got, err, tt.want, tt.err)
			}
			if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ABC1")) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}
