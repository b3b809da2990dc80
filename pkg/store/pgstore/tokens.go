package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/store"
)

const tokenColumns = `id, name, scope, secret_hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(row pgx.Row) (store.Token, error) {
	var t store.Token
	err := row.Scan(&t.ID, &t.Name, &t.Scope, &t.SecretHash, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt, &t.LastUsedAt)
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = utc(t.ExpiresAt), utc(t.RevokedAt), utc(t.LastUsedAt)
	return t, err
}

// TokenCreate stores a new token; a duplicate id is store.ErrConflict.
func (s *Store) TokenCreate(ctx context.Context, p store.TokenCreateParams) error {
	t := p.Token
	secret := t.SecretHash
	if secret == nil {
		secret = []byte{} // NOT NULL: no hash is an empty one
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Name, t.Scope, secret, store.TimeOrNow(t.CreatedAt), t.ExpiresAt, t.RevokedAt, t.LastUsedAt)
	return interpretError(err, "creating token "+t.ID)
}

// TokenGet returns one token.
func (s *Store) TokenGet(ctx context.Context, p store.TokenGetParams) (store.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = $1`, p.ID))
	if err != nil {
		return store.Token{}, interpretError(err, "token "+p.ID)
	}
	return t, nil
}

// TokenList returns every token by creation time and id.
func (s *Store) TokenList(ctx context.Context, _ store.TokenListParams) ([]store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, interpretError(err, "listing tokens")
	}
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Token, error) { return scanToken(row) })
	if err != nil {
		return nil, interpretError(err, "listing tokens")
	}
	return ts, nil
}

// TokenRevoke sets revoked_at once.
func (s *Store) TokenRevoke(ctx context.Context, p store.TokenRevokeParams) error {
	var id string
	err := s.pool.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING id`,
		p.ID, store.TimeOrNow(p.At)).Scan(&id)
	return interpretError(err, "revoking token "+p.ID)
}

// TokenTouch moves last_used_at forward.
func (s *Store) TokenTouch(ctx context.Context, p store.TokenTouchParams) error {
	// GREATEST ignores a NULL last_used_at.
	_, err := s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1`,
		p.ID, store.TimeOrNow(p.At))
	return interpretError(err, "touching token "+p.ID)
}

var _ store.Tokens = (*Store)(nil)
