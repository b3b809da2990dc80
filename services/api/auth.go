package api

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ork-go/ork/pkg/httpapi"
)

// Scope is what a token may do; each scope includes the ones before it.
type Scope int

// Scopes, from least to most.
const (
	ScopePublic Scope = iota // no token needed: health, readiness, the OpenAPI document
	ScopeRead                // read workflows, runs, logs, events and schedules
	ScopeSubmit              // also trigger, cancel, pause, resume and rerun runs; pause, resume, trigger and backfill schedules
	ScopeAdmin               // also register and delete workflows
)

// String is the scope's name as tokens carry it.
func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeSubmit:
		return "submit"
	case ScopeAdmin:
		return "admin"
	}
	return "public"
}

// ParseScope reads a scope name: read, submit or admin.
func ParseScope(name string) (Scope, error) {
	switch name {
	case "read":
		return ScopeRead, nil
	case "submit":
		return ScopeSubmit, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return 0, errors.New("unknown scope " + strconv.Quote(name) + ": want read, submit or admin")
}

// Token is a verified bearer token.
type Token struct {
	ID    string // stable id, for logs and rate limiting (never the secret)
	Name  string // who it was made for
	Scope Scope
}

// ErrBadToken is a token that is unknown, revoked or expired.
var ErrBadToken = errors.New("invalid or expired token")

// Tokens verifies the secret of a bearer token.
type Tokens interface {
	// Verify returns the token whose secret this is, ErrBadToken when there is none (or it expired),
	// or another error when it could not tell.
	Verify(ctx context.Context, secret string) (Token, error)
}

type principalKey struct{}

// principal is the token a request carries (admin when the server has no tokens).
func principal(ctx context.Context) Token {
	t, _ := ctx.Value(principalKey{}).(Token)
	return t
}

// authorize checks the request's token against the route's scope, then its rate, and stores the
// token in the context. It reports whether the request may go on (it wrote the answer otherwise).
// An event stream may carry its token in the access_token query parameter instead of the header,
// because a browser's EventSource cannot set headers (docs/security.md).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need Scope, stream bool) (*http.Request, bool) {
	// Health, readiness and the document answer probes, unlimited. Every other request counts
	// against its client address first, those with a bad token (each costs a lookup) too.
	if need == ScopePublic {
		return r, true
	}
	if !s.allow(w, r, "addr:"+clientAddr(r)) {
		return r, false
	}
	tok := Token{ID: "local", Name: "local", Scope: ScopeAdmin}
	if s.cfg.Tokens != nil {
		secret, ok := bearer(r)
		if !ok && stream {
			secret = r.URL.Query().Get("access_token")
			ok = secret != ""
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ork"`)
			writeProblem(w, r, probUnauthorized, "this server requires a token: send Authorization: Bearer <token> (ork token create makes one)")
			return r, false
		}
		var err error
		tok, err = s.cfg.Tokens.Verify(r.Context(), secret)
		if errors.Is(err, ErrBadToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ork", error="invalid_token"`)
			writeProblem(w, r, probUnauthorized, "the token is unknown, revoked or expired")
			return r, false
		}
		if err != nil {
			s.log.Warn("verifying a token failed", zapErr(err))
			writeProblem(w, r, probUnavailable, "tokens cannot be checked right now; try again later")
			return r, false
		}
		if tok.Scope < need {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ork", error="insufficient_scope", scope="`+need.String()+`"`)
			writeProblem(w, r, probForbidden, "this needs a token with scope "+need.String()+"; this one has "+tok.Scope.String())
			return r, false
		}
	}
	if s.cfg.Tokens != nil && !s.allow(w, r, "token:"+tok.ID) {
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, tok)), true
}

// allow takes one request from key's bucket, or answers 429 with Retry-After.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, key string) bool {
	wait, ok := s.limiter.allow(key)
	if ok {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeProblemValue(w, r, httpapi.Problem{Type: httpapi.ProblemTypeBase + probRateLimited.slug, Title: http.StatusText(probRateLimited.status),
		Status: probRateLimited.status, Detail: "too many requests: try again in " + strconv.Itoa(secs) + " s", RetryAfter: secs})
	return false
}

// bearer returns the request's bearer token.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return "", false
	}
	return strings.TrimSpace(secret), true
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter is one token bucket per key, forgotten after a while unused.
type limiter struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(perSec float64, burst int) *limiter {
	return &limiter{perSec: rate.Limit(perSec), burst: burst, buckets: map[string]*bucket{}, swept: time.Now()}
}

// allow takes one request from key's bucket; when it is empty it returns how long until it is not.
func (l *limiter) allow(key string) (time.Duration, bool) {
	if l.perSec <= 0 {
		return 0, true
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.perSec, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	res := b.l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// whoami says which token the request carries and its scope, so a client (the web UI) can hide
// what the token may not do.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	t := principal(r.Context())
	writeJSON(w, http.StatusOK, httpapi.Whoami{Name: t.Name, Scope: t.Scope.String(), TokensRequired: s.cfg.Tokens != nil})
}
