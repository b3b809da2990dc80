package storeopen

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Kind is the kind of store a URL names.
type Kind string

// Store kinds.
const (
	KindSQLite   Kind = "sqlite"
	KindPostgres Kind = "postgres"
	KindFile     Kind = "file"
)

// Target is a parsed store URL.
type Target struct {
	Kind Kind
	// Path is the SQLite database file or the file store's directory; empty for PostgreSQL.
	Path string
	// URL is the URL as given (the connection string for PostgreSQL).
	URL string
}

// ParseURL recognises a store URL; see the package documentation for the forms it accepts.
func ParseURL(raw string) (Target, error) {
	s := strings.TrimSpace(raw)
	lower := strings.ToLower(s)
	switch {
	case s == "":
		return Target{}, errors.New("empty store url")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			return Target{}, fmt.Errorf("store url %s: %w", Redact(s), err)
		}
		return Target{Kind: KindPostgres, URL: s}, nil
	case strings.HasPrefix(lower, "sqlite://"):
		path := s[len("sqlite://"):]
		if path == "" {
			return Target{}, fmt.Errorf("store url %s: no database file", s)
		}
		return Target{Kind: KindSQLite, Path: path, URL: s}, nil
	case strings.HasPrefix(lower, "file://"):
		dir := s[len("file://"):]
		if dir == "" {
			return Target{}, fmt.Errorf("store url %s: no directory", s)
		}
		return Target{Kind: KindFile, Path: dir, URL: s}, nil
	case !strings.Contains(s, "://") &&
		(strings.HasSuffix(lower, ".db") || strings.HasSuffix(lower, ".sqlite") || strings.HasSuffix(lower, ".sqlite3")):
		return Target{Kind: KindSQLite, Path: s, URL: s}, nil
	}
	return Target{}, fmt.Errorf("store url %s: want sqlite://PATH, PATH.db, postgres://… or file://DIR", Redact(s))
}

// Redact returns a URL with its password, if any, replaced by "xxxxx", for messages and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(raw, "@") {
			// Unparseable and possibly holding credentials: show only the scheme.
			if i := strings.Index(raw, "://"); i >= 0 {
				return raw[:i+3] + "…"
			}
			return "…"
		}
		return raw
	}
	return u.Redacted()
}
