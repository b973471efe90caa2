package fleet

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// dashboardFS holds the dashboard: one page, its stylesheet, its script and an
// icon, hand-written and embedded so the page works offline, with no CDN
// and no build step.
//
//go:embed web
var dashboardFS embed.FS

// dashboardAsset is one embedded file, read once with its validator.
type dashboardAsset struct {
	body  []byte
	ctype string
	etag  string
}

// dashboardTypes names the content type of every file in web/ by extension;
// a file with another extension is not served.
var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// dashboardCSP lets the page load only its own files and talk only to its
// own origin. The page writes worker ids and errors as text, never markup;
// should markup slip in anyway (they come from anything that can write to
// Redis), it could neither run a script nor send data elsewhere.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// DashboardHandler returns the live fleet dashboard: the page on GET /
// (and /index.html) and its files under /assets/. Mount it on "GET /{$}"
// and "GET /assets/"; it answers 404 to any other path, so the catch-all
// "GET /" works too.
//
// The page reads GET /api/fleet, /api/fleet/history and the Server-Sent
// Events of /api/fleet/events from the same origin. It is served without
// authentication, as it holds no data; when the API requires a bearer token
// (METRICS_AUTH_TOKEN), open the page as /#token=<token>: the fragment never
// leaves the browser, and the page then polls the API with fetch and an
// Authorization header, since EventSource cannot send one.
//
// The handler is safe for concurrent use.
func DashboardHandler() http.Handler {
	assets, err := loadDashboardAssets(dashboardFS, "web")
	if err != nil { // the files are compiled in: this is a broken build
		panic("fleet: dashboard assets: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := r.URL.Path
		switch {
		case name == "/" || name == "/index.html":
			name = "index.html"
		case strings.HasPrefix(name, "/assets/") && name != "/assets/index.html":
			name = strings.TrimPrefix(name, "/assets/")
		default:
			http.NotFound(w, r)
			return
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		// The files change with the binary only; revalidating is one cheap
		// 304 and never leaves an old script running against a new API.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("Referrer-Policy", "no-referrer")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

// loadDashboardAssets reads the files directly in dir of fsys, keyed by base name.
func loadDashboardAssets(fsys fs.FS, dir string) (map[string]dashboardAsset, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	assets := make(map[string]dashboardAsset, len(entries))
	for _, e := range entries {
		ctype, ok := dashboardTypes[path.Ext(e.Name())]
		if e.IsDir() || !ok {
			continue
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		assets[e.Name()] = dashboardAsset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return assets, nil
}
