package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/store"
)

// tokens returns the fixture's store as a store.Tokens, which every store must be.
func (f *fixture) tokens() store.Tokens {
	f.t.Helper()
	tk, ok := f.s.(store.Tokens)
	if !ok {
		f.t.Fatalf("%T does not implement store.Tokens", f.s)
	}
	return tk
}

func (f *fixture) token(id string) store.Token {
	f.t.Helper()
	t, err := f.tokens().TokenGet(f.ctx, store.TokenGetParams{ID: id})
	if err != nil {
		f.t.Fatalf("TokenGet(%s): %v", id, err)
	}
	return t
}

func (f *fixture) tokenIDs() []string {
	f.t.Helper()
	ts, err := f.tokens().TokenList(f.ctx, store.TokenListParams{})
	if err != nil {
		f.t.Fatalf("TokenList: %v", err)
	}
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

// wantToken checks every field of a stored token.
func wantToken(t *testing.T, what string, got, want store.Token) {
	t.Helper()
	wantEq(t, what+".ID", got.ID, want.ID)
	wantEq(t, what+".Name", got.Name, want.Name)
	wantEq(t, what+".Scope", got.Scope, want.Scope)
	if !bytes.Equal(got.SecretHash, want.SecretHash) {
		t.Errorf("%s.SecretHash = %x, want %x", what, got.SecretHash, want.SecretHash)
	}
	wantTime(t, what+".CreatedAt", &got.CreatedAt, &want.CreatedAt)
	wantTime(t, what+".ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	wantTime(t, what+".RevokedAt", got.RevokedAt, want.RevokedAt)
	wantTime(t, what+".LastUsedAt", got.LastUsedAt, want.LastUsedAt)
}

func timeAt(t time.Time) *time.Time { return &t }

func testTokens(t *testing.T, f *fixture) {
	tk := f.tokens()
	if ids := f.tokenIDs(); len(ids) != 0 {
		t.Fatalf("tokens of an empty store = %v", ids)
	}
	t1, t2 := f.now(), f.now()
	a := store.Token{ID: "tok-a", Name: "ci", Scope: "submit", SecretHash: []byte{0, 1, 0xfe, 0xff, 'x'}, CreatedAt: t2,
		ExpiresAt: timeAt(t2.Add(24 * time.Hour))}
	// b and c share a time: the id orders them.
	b := store.Token{ID: "tok-b", Name: "alice", Scope: "admin", SecretHash: []byte("hash-b"), CreatedAt: t1}
	c := store.Token{ID: "tok-ab", Name: "bob", Scope: "read", SecretHash: []byte("hash-c"), CreatedAt: t1}
	for _, x := range []store.Token{a, b, c} {
		if err := tk.TokenCreate(f.ctx, store.TokenCreateParams{Token: x}); err != nil {
			t.Fatalf("TokenCreate(%s): %v", x.ID, err)
		}
	}
	wantToken(t, "a", f.token("tok-a"), a)
	wantToken(t, "b", f.token("tok-b"), b)
	wantDeep(t, "list by created_at, id", f.tokenIDs(), []string{"tok-ab", "tok-b", "tok-a"})

	// A second token with an id taken is a conflict and changes nothing.
	dup := b
	dup.Name, dup.SecretHash = "mallory", []byte("other")
	if err := tk.TokenCreate(f.ctx, store.TokenCreateParams{Token: dup}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("TokenCreate(duplicate id) error = %v, want ErrConflict", err)
	}
	wantToken(t, "b after a duplicate", f.token("tok-b"), b)

	// Revoking sets the time once; the token stays listed.
	r1, r2 := f.now(), f.now()
	if err := tk.TokenRevoke(f.ctx, store.TokenRevokeParams{ID: "tok-b", At: r1}); err != nil {
		t.Fatalf("TokenRevoke: %v", err)
	}
	if err := tk.TokenRevoke(f.ctx, store.TokenRevokeParams{ID: "tok-b", At: r2}); err != nil {
		t.Fatalf("TokenRevoke again: %v", err)
	}
	b.RevokedAt = &r1
	wantToken(t, "b revoked", f.token("tok-b"), b)
	wantDeep(t, "list with a revoked token", f.tokenIDs(), []string{"tok-ab", "tok-b", "tok-a"})
	wantToken(t, "a after revoking b", f.token("tok-a"), a)

	// Touching moves last_used_at forward only.
	u1, u2 := f.now(), f.now()
	for _, at := range []time.Time{u1, u2, u1} {
		if err := tk.TokenTouch(f.ctx, store.TokenTouchParams{ID: "tok-a", At: at}); err != nil {
			t.Fatalf("TokenTouch: %v", err)
		}
	}
	a.LastUsedAt = &u2
	wantToken(t, "a touched", f.token("tok-a"), a)
	// Touching a revoked token records the use too (the API decides what a revoked token may do).
	if err := tk.TokenTouch(f.ctx, store.TokenTouchParams{ID: "tok-b", At: u1}); err != nil {
		t.Fatalf("TokenTouch(revoked): %v", err)
	}
	b.LastUsedAt = &u1
	wantToken(t, "b touched", f.token("tok-b"), b)

	// Times a write does not give are the time of the write.
	before := time.Now().Add(-time.Second)
	if err := tk.TokenCreate(f.ctx, store.TokenCreateParams{Token: store.Token{ID: "tok-now", SecretHash: []byte("h")}}); err != nil {
		t.Fatalf("TokenCreate without a time: %v", err)
	}
	if err := tk.TokenRevoke(f.ctx, store.TokenRevokeParams{ID: "tok-now"}); err != nil {
		t.Fatalf("TokenRevoke without a time: %v", err)
	}
	if err := tk.TokenTouch(f.ctx, store.TokenTouchParams{ID: "tok-now"}); err != nil {
		t.Fatalf("TokenTouch without a time: %v", err)
	}
	after := time.Now().Add(time.Second)
	now := f.token("tok-now")
	for what, tp := range map[string]*time.Time{"CreatedAt": &now.CreatedAt, "RevokedAt": now.RevokedAt, "LastUsedAt": now.LastUsedAt} {
		if tp == nil || tp.Before(before) || tp.After(after) {
			t.Errorf("tok-now.%s = %s, want the time of the write", what, fmtTime(tp))
		}
	}
}

func testTokensNotFound(t *testing.T, f *fixture) {
	tk := f.tokens()
	_, err := tk.TokenGet(f.ctx, store.TokenGetParams{ID: "nope"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenGet(unknown) error = %v, want ErrNotFound", err)
	}
	if err == nil || err.Error() == store.ErrNotFound.Error() {
		t.Errorf("TokenGet(unknown) error %v should name what was not found", err)
	}
	if err := tk.TokenRevoke(f.ctx, store.TokenRevokeParams{ID: "nope", At: f.now()}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenRevoke(unknown) error = %v, want ErrNotFound", err)
	}
	// Touching is best effort: no error, and no token appears.
	if err := tk.TokenTouch(f.ctx, store.TokenTouchParams{ID: "nope", At: f.now()}); err != nil {
		t.Errorf("TokenTouch(unknown) error = %v, want none", err)
	}
	if _, err := tk.TokenGet(f.ctx, store.TokenGetParams{ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenGet after touching an unknown token: error = %v, want ErrNotFound", err)
	}
	if ids := f.tokenIDs(); len(ids) != 0 {
		t.Errorf("tokens = %v, want none", ids)
	}
}
