package filestore

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/ork-go/ork/pkg/store"
)

func (t *tokenRow) toToken() store.Token {
	return store.Token{
		ID: t.ID, Name: t.Name, Scope: t.Scope, SecretHash: t.SecretHash, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt,
	}
}

// changeToken applies change to the token row of id, nil when there is none, under the write lock,
// and writes the row change returns (none when nil) as a batch of one row.
func (s *Store) changeToken(ctx context.Context, id string, change func(have *tokenRow) (*tokenRow, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lockWrite()
	if err != nil {
		return err
	}
	defer unlock()
	b := newBatch(s)
	path := s.tokenPath(id)
	have, err := get[tokenRow](b, path)
	if err != nil {
		return err
	}
	row, err := change(have)
	if err != nil || row == nil {
		return err
	}
	b.put(path, row)
	return b.write(nil)
}

// TokenCreate stores a new token; a duplicate id is store.ErrConflict.
func (s *Store) TokenCreate(ctx context.Context, p store.TokenCreateParams) error {
	t := p.Token
	err := s.changeToken(ctx, t.ID, func(have *tokenRow) (*tokenRow, error) {
		if have != nil {
			return nil, store.ErrConflict
		}
		return &tokenRow{
			ID: t.ID, Name: t.Name, Scope: t.Scope, SecretHash: t.SecretHash, CreatedAt: store.TimeOrNow(t.CreatedAt),
			ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt,
		}, nil
	})
	if err != nil {
		return fmt.Errorf("creating token %s: %w", t.ID, err)
	}
	return nil
}

// TokenGet returns one token.
func (s *Store) TokenGet(ctx context.Context, p store.TokenGetParams) (store.Token, error) {
	t, err := getRow[tokenRow](ctx, s, s.tokenPath(p.ID), "token "+p.ID)
	if err != nil {
		return store.Token{}, err
	}
	return t.toToken(), nil
}

// TokenList reads every token file and returns them by creation time and id.
func (s *Store) TokenList(ctx context.Context, _ store.TokenListParams) ([]store.Token, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := readAll[tokenRow](filepath.Join(s.base, dirTokens))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b tokenRow) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	out := make([]store.Token, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].toToken())
	}
	return out, nil
}

// TokenRevoke sets revoked_at once.
func (s *Store) TokenRevoke(ctx context.Context, p store.TokenRevokeParams) error {
	err := s.changeToken(ctx, p.ID, func(have *tokenRow) (*tokenRow, error) {
		switch {
		case have == nil:
			return nil, store.ErrNotFound
		case have.RevokedAt != nil:
			return nil, nil
		}
		at := store.TimeOrNow(p.At)
		have.RevokedAt = &at
		return have, nil
	})
	if err != nil {
		return fmt.Errorf("revoking token %s: %w", p.ID, err)
	}
	return nil
}

// TokenTouch moves last_used_at forward.
func (s *Store) TokenTouch(ctx context.Context, p store.TokenTouchParams) error {
	at := store.TimeOrNow(p.At)
	err := s.changeToken(ctx, p.ID, func(have *tokenRow) (*tokenRow, error) {
		if have == nil || (have.LastUsedAt != nil && !have.LastUsedAt.Before(at)) {
			return nil, nil
		}
		have.LastUsedAt = &at
		return have, nil
	})
	if err != nil {
		return fmt.Errorf("touching token %s: %w", p.ID, err)
	}
	return nil
}

var _ store.Tokens = (*Store)(nil)
