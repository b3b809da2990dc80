package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-go/ork/migrations"
	"github.com/ork-go/ork/pkg/store/pgtest"
)

func TestInitAndMigrate(t *testing.T) {
	t.Parallel()
	urls := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "sub", "ork.db") },
		"postgres": func(t *testing.T) string { return pgtest.SchemaURL(t) },
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := url(t)
			steps := []struct {
				args []string
				want string
			}{
				{[]string{"migrate", "version"}, "schema version 0"},
				{[]string{"init"}, fmt.Sprintf("ready (schema version %d)", migrations.Latest)},
				{[]string{"init"}, fmt.Sprintf("ready (schema version %d)", migrations.Latest)}, // twice is harmless
				{[]string{"migrate", "down"}, "schema version 0"},
				{[]string{"migrate", "up"}, fmt.Sprintf("schema version %d", migrations.Latest)},
				{[]string{"migrate", "version"}, fmt.Sprintf("schema version %d", migrations.Latest)},
			}
			for _, s := range steps {
				r := ork(t, "", append(s.args, "--db", db)...)
				if r.code != 0 || !strings.Contains(r.stdout, s.want) {
					t.Fatalf("ork %v: exit %d, stdout %q, stderr %q; want %q", s.args, r.code, r.stdout, r.stderr, s.want)
				}
			}
			if r := ork(t, "", "migrate", "sideways", "--db", db); r.code != 2 {
				t.Errorf("unknown action: exit %d, want 2", r.code)
			}
		})
	}
}
