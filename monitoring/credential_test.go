package monitoring

import (
	"net/http"
	"testing"
)

// TestHandleWith lets each accepted credential in under its own name,
// refuses the others (the read token included), and opens a route whose
// credentials have no token.
func TestHandleWith(t *testing.T) {
	s := NewServer(ServerOptions{Addr: "127.0.0.1:0", AuthToken: testToken})
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(CredentialName(r))) })
	s.HandleWith("POST /admin", echo, Credential{Name: "ADMIN_TOKEN", Token: "adm"}, Credential{Name: "OTHER", Token: "oth"})
	s.HandleWith("POST /open", echo, Credential{Name: "SUBMIT_TOKEN"})
	s.Handle("GET /read", echo, true)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(t.Context()) })
	tests := []struct {
		name, method, path, auth string
		code                     int
		body                     string
	}{
		{"admin token", "POST", "/admin", "Bearer adm", 200, "ADMIN_TOKEN"},
		{"second credential", "POST", "/admin", "Bearer oth", 200, "OTHER"},
		{"read token on admin", "POST", "/admin", "Bearer " + testToken, 401, "unauthorized"},
		{"none", "POST", "/admin", "", 401, "unauthorized"},
		{"open route", "POST", "/open", "", 200, NoCredential},
		{"read route", "GET", "/read", "Bearer " + testToken, 200, ReadCredential},
		{"admin token on read", "GET", "/read", "Bearer adm", 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, tt.method, s.URL()+tt.path, tt.auth)
			if got.code != tt.code || got.body != tt.body {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, got.code, got.body, tt.code, tt.body)
			}
		})
	}
}
