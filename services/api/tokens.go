package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ork-go/ork/pkg/store"
)

// A token is "ork_<id>_<secret>": the id names the stored row (and is safe to log), the secret
// is 32 random bytes. The database keeps only the secret's SHA-256, compared in constant time; the
// token itself is shown once, when it is made.

const tokenPrefix = "ork_"

// NewToken makes a token for name with scope, expiring after ttl (0: never). It returns the token
// to give to its user and the row to store (store.Tokens.TokenCreate).
func NewToken(name string, scope Scope, ttl time.Duration, now time.Time) (string, store.Token, error) {
	if scope < ScopeRead || scope > ScopeAdmin {
		return "", store.Token{}, fmt.Errorf("a token's scope is read, submit or admin")
	}
	if ttl < 0 {
		return "", store.Token{}, fmt.Errorf("a token's lifetime must be positive, got %s", ttl)
	}
	var id [6]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", store.Token{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", store.Token{}, err
	}
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(s))
	t := store.Token{ID: hex.EncodeToString(id[:]), Name: name, Scope: scope.String(), SecretHash: sum[:], CreatedAt: now.UTC()}
	if ttl > 0 {
		exp := now.Add(ttl).UTC()
		t.ExpiresAt = &exp
	}
	return tokenPrefix + t.ID + "_" + s, t, nil
}

// parseToken splits a token into its id and secret.
func parseToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 12 || secret == "" || len(secret) > 128 {
		return "", "", false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", "", false
	}
	return id, secret, true
}

// StoreTokens verifies tokens against the database's token table.
type StoreTokens struct {
	st  store.Tokens
	now func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time // when a token's use was last recorded
}

// NewStoreTokens verifies tokens against st.
func NewStoreTokens(st store.Tokens) *StoreTokens {
	return &StoreTokens{st: st, now: time.Now, touched: map[string]time.Time{}}
}

// touchEvery is how often a token's last use is written at most.
const touchEvery = time.Minute

// Verify implements Tokens.
func (v *StoreTokens) Verify(ctx context.Context, token string) (Token, error) {
	id, secret, ok := parseToken(token)
	if !ok {
		return Token{}, ErrBadToken
	}
	row, err := v.st.TokenGet(ctx, store.TokenGetParams{ID: id})
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, ErrBadToken
	}
	if err != nil {
		return Token{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], row.SecretHash) != 1 {
		return Token{}, ErrBadToken
	}
	now := v.now()
	if row.RevokedAt != nil || (row.ExpiresAt != nil && !now.Before(*row.ExpiresAt)) {
		return Token{}, ErrBadToken
	}
	scope, err := ParseScope(row.Scope)
	if err != nil {
		return Token{}, ErrBadToken
	}
	v.mu.Lock()
	due := now.Sub(v.touched[id]) >= touchEvery
	if due {
		v.touched[id] = now
	}
	v.mu.Unlock()
	if due {
		_ = v.st.TokenTouch(ctx, store.TokenTouchParams{ID: id, At: now})
	}
	return Token{ID: id, Name: row.Name, Scope: scope}, nil
}

// Usable reports whether st holds at least one token that is neither revoked nor expired.
func Usable(ctx context.Context, st store.Tokens, now time.Time) (bool, error) {
	all, err := st.TokenList(ctx, store.TokenListParams{})
	if err != nil {
		return false, err
	}
	for _, t := range all {
		if t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt)) {
			return true, nil
		}
	}
	return false, nil
}
