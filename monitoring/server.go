package monitoring

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is where a Server listens when ServerOptions.Addr is empty:
// METRICS_PORT's default on all interfaces.
const DefaultAddr = ":9200"

// DefaultPort is the port of DefaultAddr (METRICS_PORT's default).
const DefaultPort = 9200

// ServerOptions configures a Server. Every field is optional.
type ServerOptions struct {
	// Addr is the TCP address to listen on; "" means DefaultAddr and ":0"
	// picks a free port (see URL).
	Addr string
	// AuthToken, when set, is required as "Authorization: Bearer <token>"
	// on /metrics, /health and the routes added as protected. /livez and
	// /readyz never require it.
	AuthToken string
	// Gatherer is served on /metrics; nil leaves /metrics out.
	Gatherer prometheus.Gatherer
	// Monitor answers /health and /readyz; nil leaves them out.
	Monitor *Monitor
	Logger  *slog.Logger // nil means slog.Default()
}

// Server serves the monitoring endpoints: /health, /livez, /readyz and
// /metrics, plus routes added with Handle. Open listens synchronously, so
// a taken port is an error at start-up; Close shuts down gracefully. It is
// safe for concurrent use.
type Server struct {
	o      ServerOptions
	mux    *http.ServeMux
	srv    *http.Server
	logger *slog.Logger

	mu sync.Mutex
	ln net.Listener
}

// NewServer returns a Server with its routes in place; call Open to serve.
func NewServer(o ServerOptions) *Server {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{o: o, mux: http.NewServeMux(), logger: o.Logger}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	s.mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	if o.Monitor != nil {
		s.Handle("GET /health", http.HandlerFunc(s.serveHealth), true)
		s.mux.HandleFunc("GET /readyz", s.serveReady)
	}
	if o.Gatherer != nil {
		s.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
			ErrorLog:            promLogger{o.Logger},
			ErrorHandling:       promhttp.ContinueOnError, // partial metrics beat none
			MaxRequestsInFlight: 8,
		}), true)
	}
	return s
}

// Handle adds a route, with a ServeMux pattern such as "GET /api/workers".
// A protected route requires the bearer token (AuthToken, named
// METRICS_AUTH_TOKEN) when one is set. Add routes before Open.
func (s *Server) Handle(pattern string, h http.Handler, protected bool) {
	if protected {
		s.HandleWith(pattern, h, Credential{Name: ReadCredential, Token: s.o.AuthToken})
		return
	}
	s.mux.Handle(pattern, h)
}

// ReadCredential names AuthToken, the read token.
const ReadCredential = "METRICS_AUTH_TOKEN"

// NoCredential is the credential name of a request to a route whose
// credentials all have no token: it is open.
const NoCredential = "none"

// Credential is one bearer token a route accepts, with the name it is
// known by (its variable, such as "ADMIN_TOKEN"): logs and metrics name
// the credential, never its value. A Credential with no Token opens
// nothing.
type Credential struct {
	Name  string
	Token string
}

// HandleWith adds a route that requires one of creds as a bearer token;
// when none of them has a token, the route is open. The handler finds the
// name of the credential the request presented with CredentialName.
func (s *Server) HandleWith(pattern string, h http.Handler, creds ...Credential) {
	var accepted []hashedCredential
	for _, c := range creds {
		if c.Token != "" {
			accepted = append(accepted, hashedCredential{name: c.Name, sum: sha256.Sum256([]byte(c.Token))})
		}
	}
	s.mux.Handle(pattern, requireOne(accepted, h))
}

type hashedCredential struct {
	name string
	sum  [sha256.Size]byte
}

type credentialKey struct{}

// CredentialName returns the name of the credential the request was
// let in with: a Credential's Name, or NoCredential on an open route.
func CredentialName(r *http.Request) string {
	if n, ok := r.Context().Value(credentialKey{}).(string); ok {
		return n
	}
	return NoCredential
}

func requireOne(accepted []hashedCredential, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := NoCredential
		if len(accepted) > 0 {
			name = match(accepted, r.Header.Get("Authorization"))
			if name == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="botfleet"`)
				writeText(w, http.StatusUnauthorized, "unauthorized")
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), credentialKey{}, name)))
	})
}

// match returns the name of the credential the header carries, or "".
// It compares hashes, every one of them, so neither a token's bytes nor
// its length nor which one matched leak through timing.
func match(accepted []hashedCredential, header string) string {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	name := ""
	for _, c := range accepted {
		if subtle.ConstantTimeCompare(got[:], c.sum[:]) == 1 && name == "" {
			name = c.name
		}
	}
	return name
}

// HandlePrefix serves h at prefix and every path under it (prefix and
// prefix+"/..."), such as a package's whole API; h answers the methods and
// paths it does not serve. protected routes need the token when one is
// set.
func (s *Server) HandlePrefix(prefix string, h http.Handler, protected bool) {
	prefix = strings.TrimSuffix(prefix, "/")
	s.Handle(prefix, h, protected)
	s.Handle(prefix+"/", h, protected)
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := s.o.Monitor.Health()
	body, err := json.Marshal(h)
	if err != nil { // only NaN or Inf could do this; report rather than hide it
		s.logger.Error("encode /health", "error", err)
		writeText(w, http.StatusInternalServerError, "cannot encode health")
		return
	}
	code := http.StatusOK
	if h.Status == StatusUnhealthy {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if err := s.o.Monitor.Ready(); err != nil {
		writeText(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, text)
}

// Open listens on Addr before it returns, so a taken port is an error
// naming the address, then serves in a background goroutine.
func (s *Server) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("monitoring: server already open")
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("monitoring: listen on %s: %w", s.o.Addr, err)
	}
	s.ln = ln
	s.logger.Info("monitoring endpoints listening", "addr", ln.Addr().String(), "auth", s.o.AuthToken != "")
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("monitoring server stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return nil
}

// URL returns the server's base URL with a loopback host when it listens
// on all interfaces, such as "http://127.0.0.1:9200"; "" before Open.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	addr, ok := s.ln.Addr().(*net.TCPAddr)
	if !ok {
		return "http://" + s.ln.Addr().String()
	}
	host := "127.0.0.1"
	if !addr.IP.IsUnspecified() && addr.IP != nil {
		host = addr.IP.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Close stops accepting connections and waits for requests in flight
// until ctx ends; then it closes the rest and returns ctx's error.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	open := s.ln != nil
	s.mu.Unlock()
	if !open {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return fmt.Errorf("monitoring: shut down server: %w", err)
	}
	return nil
}

// promLogger hands promhttp's errors to slog.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Error("serving /metrics", "error", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// Probe GETs url, within 2 seconds at most, and returns an error unless
// the answer is 200 OK. `botfleet healthcheck` uses it against /livez or
// /readyz.
func Probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err) // *url.Error already names the URL
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
