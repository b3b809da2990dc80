package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/pkg/workflow"
)

// Run ids of refDB. latest is the newest run although its id is the smallest; the two aaaa runs
// share a prefix of 13 characters.
const (
	refA      = "0193aaaa-0000-7000-8000-000000000001" // etl, pending
	refB      = "0193aaaa-0000-7000-8000-000000000002" // ml, pending
	refC      = "0193bbbb-0000-7000-8000-000000000003" // etl, failed
	refLatest = "0000cccc-0000-7000-8000-000000000004" // ml, success, created last
)

// refRun is one run of a test database.
type refRun struct {
	id, workflow, status string
	created              time.Time
}

// refRuns are refDB's runs, created an hour apart in this order.
func refRuns() []refRun {
	t0 := time.Date(2024, 7, 14, 10, 0, 0, 0, time.UTC)
	return []refRun{
		{refA, "etl", event.RunPending, t0},
		{refB, "ml", event.RunPending, t0.Add(time.Hour)},
		{refC, "etl", event.RunFailed, t0.Add(2 * time.Hour)},
		{refLatest, "ml", event.RunSuccess, t0.Add(3 * time.Hour)},
	}
}

// newRefDB writes runs (each with one task, "only", that logged one line naming its run) to a fresh
// SQLite database and returns its URL for --db.
func newRefDB(t *testing.T, runs []refRun) string {
	t.Helper()
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "ork.db")
	if err := schema.Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := storeopen.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var p store.ApplyBatchParams
	for _, r := range runs {
		plan := &workflow.Plan{Name: r.workflow, Hash: "hash-" + r.workflow,
			Tasks: []workflow.Task{{Name: "only", Executor: workflow.ExecutorNoop}}}
		sub := event.New(event.TypeRunSubmitted, r.id, "", 0)
		sub.Time, sub.Workflow, sub.Plan, sub.TriggeredBy = r.created, r.workflow, plan, "test"
		p.Events = append(p.Events, sub)
		if r.status != event.RunPending {
			started := event.New(event.TypeRunStarted, r.id, "", 0)
			finished := event.New(event.TypeRunFinished, r.id, "", 0)
			finished.Status = r.status
			p.Events = append(p.Events, started, finished)
		}
		p.Logs = append(p.Logs, event.LogBatch{V: event.SchemaVersion, RunID: r.id, Task: "only", Attempt: 1,
			Lines: []event.LogLine{{Seq: 1, Stream: "stdout", Line: "line of " + r.id, Time: r.created}}})
	}
	if _, err := st.ApplyBatch(ctx, p); err != nil {
		t.Fatal(err)
	}
	return url
}

// wantCLI runs ork with args and checks its exit status and that stdout (status 0) or stderr
// holds every one of want.
func wantCLI(t *testing.T, code int, args []string, want ...string) result {
	t.Helper()
	r := cli(t, args...)
	got := r.stdout
	if code != 0 {
		got = r.stderr
	}
	if r.code != code {
		t.Fatalf("ork %s: status %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("ork %s: output lacks %q\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), w, r.stdout, r.stderr)
		}
	}
	return r
}

// shownRun returns the id on the first line of `ork status RUN_ID`, "run ID".
func shownRun(stdout string) string {
	first, _, _ := strings.Cut(stdout, "\n")
	if f := strings.Fields(first); len(f) == 2 && f[0] == "run" {
		return f[1]
	}
	return ""
}

func TestRunRefPrefixResolves(t *testing.T) {
	t.Parallel()
	db := newRefDB(t, refRuns())
	for _, tc := range []struct {
		ref, want string
	}{
		{"0193b", refC},
		{"0193bbbb-0000", refC},
		{"0193aaaa-0000-7000-8000-000000000002", refB},
		{"0000", refLatest},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			t.Parallel()
			r := wantCLI(t, 0, []string{"status", tc.ref, "--db", db})
			if got := shownRun(r.stdout); got != tc.want {
				t.Errorf("status %s shows run %q, want %s", tc.ref, got, tc.want)
			}
			r = wantCLI(t, 0, []string{"status", tc.ref, "--db", db, "--json"}, `"run_id": "`+tc.want+`"`)
			if strings.Count(r.stdout, `"run_id"`) != 1 {
				t.Errorf("status --json of one run printed more:\n%s", r.stdout)
			}
			wantCLI(t, 0, []string{"tasks", tc.ref, "--db", db}, "only")
			wantCLI(t, 0, []string{"tasks", tc.ref, "--db", db, "--json"}, `"run_id": "`+tc.want+`"`)
			wantCLI(t, 0, []string{"logs", tc.ref, "--db", db}, "only | line of "+tc.want+"\n")
			wantCLI(t, 0, []string{"logs", tc.ref, "only", "--db", db}, "only | line of "+tc.want+"\n")
			wantCLI(t, 1, []string{"logs", tc.ref, "nope", "--db", db}, "run "+tc.want+" has no task nope")
		})
	}
}

func TestRunRefLatest(t *testing.T) {
	t.Parallel()
	db := newRefDB(t, refRuns())
	r := wantCLI(t, 0, []string{"status", "latest", "--db", db}, "success")
	if got := shownRun(r.stdout); got != refLatest {
		t.Errorf("status latest shows run %q, want %s", got, refLatest)
	}
	wantCLI(t, 0, []string{"tasks", "latest", "--db", db}, "only")
	wantCLI(t, 0, []string{"logs", "latest", "--db", db}, "only | line of "+refLatest+"\n")

	empty := newRefDB(t, nil)
	for _, cmd := range []string{"status", "tasks", "logs"} {
		wantCLI(t, 1, []string{cmd, "latest", "--db", empty}, "error: no runs in this database yet, so no latest run")
	}
}

func TestRunRefAmbiguousListsCandidates(t *testing.T) {
	t.Parallel()
	db := newRefDB(t, refRuns())
	created := func(id string) string {
		for _, r := range refRuns() {
			if r.id == id {
				return r.created.Local().Format(time.DateTime)
			}
		}
		panic(id)
	}
	for _, args := range [][]string{{"status", "0193"}, {"tasks", "0193aaaa"}, {"logs", "0193aaaa-0000-7000-8000"}} {
		r := wantCLI(t, 1, append(args, "--db", db), "run id prefix "+args[1]+" is ambiguous",
			refA, refB, "etl", "ml", created(refA), created(refB), "give more characters of the id")
		if strings.Contains(r.stderr, refLatest) {
			t.Errorf("ork %s lists a run that does not match:\n%s", args[0], r.stderr)
		}
	}
	r := wantCLI(t, 1, []string{"status", "0193", "--db", db}, "3 runs match", refC)
	// Newest first, one line per run.
	if i, j := strings.Index(r.stderr, refC), strings.Index(r.stderr, refA); i > j {
		t.Errorf("candidates not newest first:\n%s", r.stderr)
	}

	// Many matches: the newest few are listed, and the message says there are more.
	var many []refRun
	t0 := time.Date(2024, 7, 14, 10, 0, 0, 0, time.UTC)
	for i := range runRefCandidatesShown + 2 {
		many = append(many, refRun{fmt.Sprintf("0193dddd-0000-7000-8000-%012d", i), "etl", event.RunPending, t0.Add(time.Duration(i) * time.Minute)})
	}
	r = wantCLI(t, 1, []string{"status", "0193dddd", "--db", newRefDB(t, many)},
		fmt.Sprintf("more than %d runs match, the newest:", runRefCandidatesShown), many[len(many)-1].id)
	if strings.Contains(r.stderr, many[0].id) || strings.Contains(r.stderr, many[1].id) {
		t.Errorf("lists more than the newest %d:\n%s", runRefCandidatesShown, r.stderr)
	}
}

func TestRunRefUnknown(t *testing.T) {
	t.Parallel()
	db := newRefDB(t, refRuns())
	for _, cmd := range []string{"status", "tasks", "logs"} {
		wantCLI(t, 1, []string{cmd, "0193ffff", "--db", db}, "error: no run 0193ffff in this database (ork status lists the recent runs)")
		wantCLI(t, 1, []string{cmd, "0193aaaa-0000-7000-8000-000000000009", "--db", db}, "error: no run 0193aaaa-0000-7000-8000-000000000009 in this database")
		// Too short to be taken as a prefix, although it is one.
		wantCLI(t, 1, []string{cmd, "019", "--db", db}, "error: no run 019 in this database; a prefix of a run id needs at least 4 characters")
		// A prefix is not a pattern.
		wantCLI(t, 1, []string{cmd, "0193%", "--db", db}, "error: no run 0193% in this database")
		wantCLI(t, 1, []string{cmd, "0193aaaa-0000-7000-8000-00000000000_", "--db", db}, "in this database")
	}
}

func TestStatusFilter(t *testing.T) {
	t.Parallel()
	db := newRefDB(t, refRuns())
	for _, tc := range []struct {
		status string
		want   []string
	}{
		{"failed", []string{refC}},
		{"success", []string{refLatest}},
		{"pending", []string{refB, refA}},
		{"running", nil},
		{"paused", nil},
		{"cancelled", nil},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			r := wantCLI(t, 0, []string{"status", "--status", tc.status, "--db", db})
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
				got = append(got, strings.Fields(line)[0])
			}
			if len(tc.want) == 0 {
				if r.stdout != "no matching runs\n" {
					t.Fatalf("stdout %q, want no matching runs", r.stdout)
				}
				return
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("--status %s lists %q, want %q\n%s", tc.status, got, tc.want, r.stdout)
			}
			r = wantCLI(t, 0, []string{"status", "--status", tc.status, "--db", db, "--json"})
			if n := strings.Count(r.stdout, `"run_id"`); n != len(tc.want) {
				t.Fatalf("--status %s --json lists %d runs, want %d:\n%s", tc.status, n, len(tc.want), r.stdout)
			}
		})
	}
	wantCLI(t, 0, []string{"status", "--status", "pending", "--workflow", "ml", "--db", db}, refB)
}

func TestStatusFilterUnknownIsUsageError(t *testing.T) {
	t.Parallel()
	db := newRefDB(t, refRuns())
	for _, args := range [][]string{
		{"status", "--status", "done", "--db", db},
		{"status", "--status", "FAILED", "--db", db},
		// Checked before the database is opened.
		{"status", "--status", "done", "--db", "sqlite://" + filepath.Join(t.TempDir(), "none.db")},
	} {
		r := wantCLI(t, 2, args, `error: unknown run status "`+args[2]+`" for --status: want one of pending, running, paused, success, failed, cancelled`)
		if r.stdout != "" {
			t.Errorf("usage error wrote to stdout: %q", r.stdout)
		}
	}
}

func TestIsFullRunID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		event.NewID():                           true,
		refA:                                    true,
		"0193AAAA-0000-7000-8000-00000000000F":  true,
		"0193aaaa-0000-7000-8000-00000000000":   false,
		"0193aaaa-0000-7000-8000-0000000000001": false,
		"0193aaaa00000-7000-8000-000000000001":  false,
		"0193aaaa-0000-7000-8000-00000000000g":  false,
		"latest":                                false,
		"":                                      false,
	} {
		if got := isFullRunID(id); got != want {
			t.Errorf("isFullRunID(%q) = %v, want %v", id, got, want)
		}
	}
}
