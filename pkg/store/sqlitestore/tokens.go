package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ork-go/ork/pkg/store"
)

const tokenColumns = `id, name, scope, secret_hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(sc scanner) (store.Token, error) {
	var (
		t                      store.Token
		created                string
		expires, revoked, used sql.NullString
	)
	if err := sc.Scan(&t.ID, &t.Name, &t.Scope, &t.SecretHash, &created, &expires, &revoked, &used); err != nil {
		return store.Token{}, err
	}
	var err error
	if t.CreatedAt, err = parseTime(created); err != nil {
		return store.Token{}, err
	}
	if t.ExpiresAt, err = parseNullTime(expires); err != nil {
		return store.Token{}, err
	}
	if t.RevokedAt, err = parseNullTime(revoked); err != nil {
		return store.Token{}, err
	}
	t.LastUsedAt, err = parseNullTime(used)
	return t, err
}

// dbNullTime encodes an optional time; nil is NULL.
func dbNullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return dbTime(*t)
}

// TokenCreate stores a new token; a duplicate id is store.ErrConflict.
func (s *Store) TokenCreate(ctx context.Context, p store.TokenCreateParams) error {
	t := p.Token
	secret := t.SecretHash
	if secret == nil {
		secret = []byte{} // NOT NULL: no hash is an empty one
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)`,
		t.ID, t.Name, t.Scope, secret, dbTime(store.TimeOrNow(t.CreatedAt)), dbNullTime(t.ExpiresAt), dbNullTime(t.RevokedAt), dbNullTime(t.LastUsedAt))
	if err != nil {
		return fmt.Errorf("creating token %s: %w", t.ID, interpretError(err))
	}
	return nil
}

// TokenGet returns one token.
func (s *Store) TokenGet(ctx context.Context, p store.TokenGetParams) (store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`, p.ID))
	if err != nil {
		return store.Token{}, fmt.Errorf("getting token %s: %w", p.ID, interpretError(err))
	}
	return t, nil
}

// TokenList returns every token by creation time and id.
func (s *Store) TokenList(ctx context.Context, _ store.TokenListParams) ([]store.Token, error) {
	return collect(ctx, s.r, "listing tokens", `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`, nil, scanToken)
}

// TokenRevoke sets revoked_at once.
func (s *Store) TokenRevoke(ctx context.Context, p store.TokenRevokeParams) error {
	var id string
	err := s.w.QueryRowContext(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1 RETURNING id`,
		p.ID, dbTime(store.TimeOrNow(p.At))).Scan(&id)
	if err != nil {
		return fmt.Errorf("revoking token %s: %w", p.ID, interpretError(err))
	}
	return nil
}

// TokenTouch moves last_used_at forward (times are fixed-width text, so they compare as text).
func (s *Store) TokenTouch(ctx context.Context, p store.TokenTouchParams) error {
	_, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)`,
		p.ID, dbTime(store.TimeOrNow(p.At)))
	if err != nil {
		return fmt.Errorf("touching token %s: %w", p.ID, interpretError(err))
	}
	return nil
}

var _ store.Tokens = (*Store)(nil)
