package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// The OpenAPI document and the router agree: every route is documented with its scope, and every
// documented operation is routed.
func TestOpenAPIMatchesTheRouter(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string            `json:"operationId"`
			Scope       string            `json:"x-ork-scope"`
			Security    []json.RawMessage `json:"security"`
			Responses   map[string]any    `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	routed := map[string]bool{}
	for _, rt := range apiRoutes {
		key := rt.method + " " + rt.pattern
		routed[key] = true
		op, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s is routed but not documented", key)
			continue
		}
		if op.OperationID == "" || len(op.Responses) == 0 {
			t.Errorf("%s: documented without an operationId or responses", key)
		}
		switch {
		case rt.scope == ScopePublic && (op.Security == nil || len(op.Security) != 0):
			t.Errorf("%s is public: document it with security: []", key)
		case rt.scope != ScopePublic && op.Scope != rt.scope.String():
			t.Errorf("%s needs scope %s, documented as %q", key, rt.scope, op.Scope)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if key := strings.ToUpper(method) + " " + path; !routed[key] {
				t.Errorf("%s is documented but not routed", key)
			}
		}
	}
}

// Scopes order as documented, and parse from their names.
func TestScopes(t *testing.T) {
	if !(ScopePublic < ScopeRead && ScopeRead < ScopeSubmit && ScopeSubmit < ScopeAdmin) {
		t.Fatal("scopes out of order")
	}
	for _, s := range []Scope{ScopeRead, ScopeSubmit, ScopeAdmin} {
		got, err := ParseScope(s.String())
		if err != nil || got != s {
			t.Errorf("ParseScope(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseScope("root"); err == nil || !strings.Contains(err.Error(), "want read, submit or admin") {
		t.Errorf("ParseScope(root): %v", err)
	}
}

// The router's fallback matches paths as Go's patterns do, one segment per wildcard.
func TestMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/api/v1/runs/{id}", "/api/v1/runs/abc", true},
		{"/api/v1/runs/{id}", "/api/v1/runs/", false},
		{"/api/v1/runs/{id}", "/api/v1/runs/a/b", false},
		{"/api/v1/runs/{id}/cancel", "/api/v1/runs/x/cancel", true},
		{"/healthz", "/healthz", true},
	} {
		if got := matches(c.pattern, c.path); got != c.want {
			t.Errorf("matches(%q, %q) = %v", c.pattern, c.path, got)
		}
	}
}

// The limiter lets a burst through, then says how long to wait; a negative rate never limits.
func TestLimiter(t *testing.T) {
	l := newLimiter(1, 2)
	for i := range 2 {
		if _, ok := l.allow("k"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	wait, ok := l.allow("k")
	if ok || wait <= 0 {
		t.Fatalf("third request: ok=%v wait=%s", ok, wait)
	}
	if _, ok := l.allow("other"); !ok {
		t.Error("another key shares the bucket")
	}
	unlimited := newLimiter(-1, 0)
	for range 1000 {
		if _, ok := unlimited.allow("k"); !ok {
			t.Fatal("a negative rate limited")
		}
	}
}
