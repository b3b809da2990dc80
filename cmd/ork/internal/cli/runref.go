package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ork-go/ork/pkg/store"
)

// How a person names a run on the command line (RUN_ID): a whole id, a unique prefix of one, or
// runRefLatest.
const (
	// runRefLatest names the newest run: the last created, the greatest id among equals.
	runRefLatest = "latest"
	// runIDPrefixMin is the shortest prefix taken: shorter ones would match most runs of a busy
	// database, and a typo of two characters should not pick a run.
	runIDPrefixMin = 4
	// runRefCandidatesShown is how many of the runs an ambiguous prefix matches are listed.
	runRefCandidatesShown = 5
	// runIDLen is the length of a run id: a UUID in its text form.
	runIDLen = 36
)

// resolveRunRef returns the id of the run ref names in st: latest, a whole run id, or a prefix of
// at least runIDPrefixMin characters that only one run's id starts with.
func resolveRunRef(ctx context.Context, st store.Store, ref string) (string, error) {
	return resolveRunRefIn(ctx, storeRuns{st}, ref)
}

// runFinder is where runs are looked up: a database, or a server's API.
type runFinder interface {
	// exists reports whether a run of this id exists.
	exists(ctx context.Context, id string) (bool, error)
	// newest lists up to limit runs, newest first, whose id starts with prefix ("" for any).
	newest(ctx context.Context, prefix string, limit int) ([]store.Run, error)
	where() string
}

type storeRuns struct{ st store.Store }

func (s storeRuns) exists(ctx context.Context, id string) (bool, error) {
	_, err := s.st.RunGet(ctx, store.RunGetParams{ID: id})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s storeRuns) newest(ctx context.Context, prefix string, limit int) ([]store.Run, error) {
	return s.st.RunList(ctx, store.RunListParams{IDPrefix: prefix, Limit: limit})
}

func (storeRuns) where() string { return "this database" }

// resolveRunRefIn is resolveRunRef over any finder.
func resolveRunRefIn(ctx context.Context, f runFinder, ref string) (string, error) {
	if ref == runRefLatest {
		runs, err := f.newest(ctx, "", 1)
		if err != nil {
			return "", fmt.Errorf("finding the latest run: %w", err)
		}
		if len(runs) == 0 {
			return "", fmt.Errorf("no runs in %s yet, so no latest run (ork run FILE starts one)", f.where())
		}
		return runs[0].ID, nil
	}
	ok, err := f.exists(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("reading run %s: %w", ref, err)
	}
	if ok {
		return ref, nil
	}
	if len(ref) < runIDPrefixMin {
		return "", fmt.Errorf("no run %s in %s; a prefix of a run id needs at least %d characters (ork status lists the recent runs)", ref, f.where(), runIDPrefixMin)
	}
	runs, err := f.newest(ctx, ref, runRefCandidatesShown+1)
	if err != nil {
		return "", fmt.Errorf("finding the runs whose id starts with %s: %w", ref, err)
	}
	switch len(runs) {
	case 0:
		return "", fmt.Errorf("no run %s in %s (ork status lists the recent runs)", ref, f.where())
	case 1:
		return runs[0].ID, nil
	}
	return "", ambiguousRunRef(ref, runs)
}

// ambiguousRunRef words the error of a prefix that several runs' ids start with: runs are the
// newest of them, up to one more than are shown.
func ambiguousRunRef(prefix string, runs []store.Run) error {
	var b strings.Builder
	if len(runs) > runRefCandidatesShown {
		fmt.Fprintf(&b, "run id prefix %s is ambiguous: more than %d runs match, the newest:\n", prefix, runRefCandidatesShown)
		runs = runs[:runRefCandidatesShown]
	} else {
		fmt.Fprintf(&b, "run id prefix %s is ambiguous: %d runs match:\n", prefix, len(runs))
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, r := range runs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.ID, r.Workflow, r.CreatedAt.Local().Format(time.DateTime))
	}
	_ = tw.Flush() // a strings.Builder does not fail
	b.WriteString("give more characters of the id")
	return errors.New(b.String())
}

// isFullRunID reports whether ref has the form of a whole run id, a UUID as 36 characters
// (8-4-4-4-12 hexadecimal digits), so that it can be used without a database to look it up in.
func isFullRunID(ref string) bool {
	if len(ref) != runIDLen {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
