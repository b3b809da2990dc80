package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// csp allows only the UI's own scripts, styles and requests: no CDN, no inline script.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// notBuilt is the page a binary built without the UI answers.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ork: the web UI is not built</title></head>
<body><h1>The web UI is not built</h1>
<p>This binary was built without the web UI. Run <code>make ui</code> (or <code>make build</code>)
in the repository, then build again. The HTTP API works all the same: see
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p></body></html>
`

// Handler serves the UI: a file of the build by its path, index.html for any other path (the
// UI's routes). Files under /assets/ carry a content hash in their names and are cached for good;
// index.html is revalidated, so a new build shows at the next load.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil { // dist is embedded: it is always there
		panic(err)
	}
	return handler(files)
}

func handler(files fs.FS) http.Handler {
	index, err := fs.ReadFile(files, "index.html")
	built := err == nil
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !built {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte(notBuilt))
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(files, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					h.Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					h.Set("Cache-Control", "no-cache")
				}
				http.ServeFileFS(w, r, files, name)
				return
			}
			if strings.HasPrefix(name, "assets/") { // a missing asset is a 404, not the page
				http.NotFound(w, r)
				return
			}
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", csp)
		if r.Method == http.MethodGet {
			_, _ = w.Write(index)
		}
	})
}
