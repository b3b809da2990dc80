package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// A built UI answers its files by path, index.html for the UI's routes, and 404 for a missing asset.
func TestHandlerServesTheBuild(t *testing.T) {
	t.Parallel()
	h := handler(fstest.MapFS{
		"index.html":        {Data: []byte("<!doctype html><title>Ork</title>")},
		"assets/app-abc.js": {Data: []byte("console.log(1)")},
		"favicon.svg":       {Data: []byte("<svg/>")},
	})
	for _, c := range []struct {
		path, want string
		code       int
	}{
		{"/", "<title>Ork</title>", 200},
		{"/runs/0193abc", "<title>Ork</title>", 200},
		{"/workflows/hello", "<title>Ork</title>", 200},
		{"/assets/app-abc.js", "console.log", 200},
		{"/favicon.svg", "<svg/>", 200},
		{"/assets/gone.js", "not found", 404},
	} {
		t.Run(c.path, func(t *testing.T) {
			t.Parallel()
			w := get(t, h, c.path)
			if w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
				t.Errorf("GET %s: %d %q, want %d with %q", c.path, w.Code, w.Body.String(), c.code, c.want)
			}
		})
	}
	if cc := get(t, h, "/assets/app-abc.js").Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("an asset's Cache-Control is %q", cc)
	}
	if csp := get(t, h, "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("the page's CSP is %q", csp)
	}
}

// Without a build every path answers the page that says to run make ui.
func TestHandlerWithoutBuild(t *testing.T) {
	t.Parallel()
	h := handler(fstest.MapFS{".gitkeep": {Data: nil}})
	w := get(t, h, "/runs/x")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "make ui") {
		t.Errorf("GET /runs/x without a build: %d %q", w.Code, w.Body.String())
	}
}
