package serve_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/api"
)

// makeTokens creates a database at dbURL with tokens of every scope, a revoked and an expired one,
// and returns them by name.
func makeTokens(t *testing.T, dbURL string, names ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	if err := schema.Up(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	st, err := storeopen.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := st.(store.Tokens)
	out := map[string]string{}
	for _, n := range names {
		scope, ttl := api.ScopeAdmin, time.Duration(0)
		switch {
		case strings.HasPrefix(n, "read"):
			scope = api.ScopeRead
		case strings.HasPrefix(n, "submit"):
			scope = api.ScopeSubmit
		}
		now := time.Now()
		if n == "expired" {
			now, ttl = now.Add(-2*time.Hour), time.Hour
		}
		secret, row, err := api.NewToken(n, scope, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.TokenCreate(ctx, store.TokenCreateParams{Token: row}); err != nil {
			t.Fatal(err)
		}
		if n == "revoked" {
			if err := ts.TokenRevoke(ctx, store.TokenRevokeParams{ID: row.ID, At: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		out[n] = secret
	}
	return out
}

// startWithTokens is start over a database holding tokens, requiring them.
func startWithTokens(t *testing.T, names ...string) (*server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "ork.db")
	tokens := makeTokens(t, dbURL, names...)
	return startWith(t, serve.Config{RequireTokens: true, Stack: embedded.Config{DataDir: dir, DBURL: dbURL}}), tokens
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// Every permission boundary of the API, tried: no token, a malformed, unknown, wrong, revoked or
// expired one is 401; a token whose scope is too small is 403; each scope may do what it should.
func TestTokenBoundaries(t *testing.T) {
	t.Parallel()
	s, tok := startWithTokens(t, "read", "submit", "admin", "revoked", "expired")
	hello := readExample(t, "hello.yaml")

	s.want(s.do("GET", "/healthz", nil), http.StatusOK)
	s.want(s.do("GET", "/api/v1/openapi.json", nil), http.StatusOK)
	r := s.do("GET", "/api/v1/workflows", nil)
	s.wantProblem(r, http.StatusUnauthorized, "unauthorized", "requires a token")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", r.header)
	}
	id := strings.Split(tok["admin"], "_")[1]
	for what, token := range map[string]string{
		"malformed":    "not-a-token",
		"unknown id":   "ork_000000000000_" + strings.Split(tok["admin"], "_")[2],
		"wrong secret": "ork_" + id + "_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"revoked":      tok["revoked"],
		"expired":      tok["expired"],
	} {
		t.Run(what, func(t *testing.T) {
			s.wantProblem(s.do("GET", "/api/v1/workflows", nil, bearer(token)...), http.StatusUnauthorized, "unauthorized", "unknown, revoked or expired")
		})
	}
	res, err := http.Get(s.base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the event stream without a token: %d", res.StatusCode)
	}

	// read: reads, nothing else.
	s.want(s.do("GET", "/api/v1/workflows", nil, bearer(tok["read"])...), http.StatusOK)
	s.wantProblem(s.do("PUT", "/api/v1/workflows/hello", hello, bearer(tok["read"])...), http.StatusForbidden, "forbidden", "scope admin; this one has read")
	// admin registers.
	s.want(s.do("PUT", "/api/v1/workflows/hello", hello, bearer(tok["admin"])...), http.StatusCreated)
	s.wantProblem(s.do("POST", "/api/v1/workflows/hello/runs", nil, bearer(tok["read"])...), http.StatusForbidden, "forbidden", "scope submit; this one has read")
	// submit: triggers and controls, may not register or delete.
	r = s.do("POST", "/api/v1/workflows/hello/runs", nil, bearer(tok["submit"])...)
	s.want(r, http.StatusCreated)
	var trig struct {
		RunID string `json:"run_id"`
	}
	r.json(t, &trig)
	s.wantProblem(s.do("POST", "/api/v1/runs/"+trig.RunID+"/cancel", nil, bearer(tok["read"])...), http.StatusForbidden, "forbidden", "scope submit")
	s.wantProblem(s.do("PUT", "/api/v1/workflows/hello", hello, bearer(tok["submit"])...), http.StatusForbidden, "forbidden", "scope admin; this one has submit")
	s.wantProblem(s.do("DELETE", "/api/v1/workflows/hello", nil, bearer(tok["submit"])...), http.StatusForbidden, "forbidden", "scope admin")
	res2, err := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", s.base+"/api/v1/runs/"+trig.RunID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok["read"])
		return http.DefaultClient.Do(req)
	}()
	if err != nil {
		t.Fatal(err)
	}
	readSSE(t, res2.Body, nil)
	res2.Body.Close()
	if res2.StatusCode != http.StatusOK {
		t.Errorf("the run's events with a read token: %d", res2.StatusCode)
	}
	r = s.do("GET", "/api/v1/runs/"+trig.RunID, nil, bearer(tok["read"])...)
	s.want(r, http.StatusOK)
	var run struct {
		TriggeredBy string `json:"triggered_by"`
	}
	r.json(t, &run)
	if run.TriggeredBy != "api:submit" {
		t.Errorf("triggered_by %q, want the token's name", run.TriggeredBy)
	}
	s.want(s.do("DELETE", "/api/v1/workflows/hello", nil, bearer(tok["admin"])...), http.StatusOK)
}

// A server that requires tokens does not start without a valid one, nor on an open address
// without requiring them.
func TestTokensRequiredToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "ork.db")
	makeTokens(t, dbURL, "revoked", "expired")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := serve.Start(ctx, serve.Config{RequireTokens: true, API: api.Config{Addr: "127.0.0.1:0"},
		Stack: embedded.Config{DataDir: dir, DBURL: dbURL}}, zaptest.NewLogger(t))
	if err == nil || !strings.Contains(err.Error(), "holds none that is valid: create one with ork token create") {
		t.Fatalf("err = %v", err)
	}
}
