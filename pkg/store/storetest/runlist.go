package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// listedRun is what a RunList case knows of a run it submitted, to compute the expected lists.
type listedRun struct {
	id, workflow, status, by string
	created                  time.Time
}

// submitAt builds a run.submitted event at a given time, triggered by by.
func (f *fixture) submitAt(id string, p *workflow.Plan, at time.Time, by string) event.Event {
	e := f.submit(id, p, "")
	e.Time, e.TriggeredBy = at, by
	return e
}

// runIDs returns the ids of runs, in order (nil for none).
func runIDs(rs []store.Run) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// expectRuns returns the ids of the known runs that p keeps, in list order, without the limit.
func expectRuns(known []listedRun, p store.RunListParams) []string {
	var keep []listedRun
	for _, r := range known {
		if (p.Workflow == "" || r.workflow == p.Workflow) && (p.Status == "" || r.status == p.Status) &&
			(p.TriggeredBy == "" || r.by == p.TriggeredBy) &&
			(p.Since.IsZero() || !r.created.Before(p.Since)) && (p.Until.IsZero() || r.created.Before(p.Until)) &&
			(p.Before == nil || store.RunOrder(r.created, r.id, p.Before.CreatedAt, p.Before.ID) > 0) {
			keep = append(keep, r)
		}
	}
	slices.SortFunc(keep, func(a, b listedRun) int { return store.RunOrder(a.created, a.id, b.created, b.id) })
	var ids []string
	for _, r := range keep {
		ids = append(ids, r.id)
	}
	return ids
}

// pageRuns lists every run p keeps, limit at a time, following the cursor of each page's last run;
// more, when not nil, is called after each full page with the pages so far and the next cursor, and
// may create runs.
func (f *fixture) pageRuns(p store.RunListParams, limit int, more func(pages int, next *store.RunCursor)) []string {
	f.t.Helper()
	var got []string
	p.Limit = limit
	for pages := 1; ; pages++ {
		if pages > 100 {
			f.t.Fatal("paging does not end")
		}
		rs := f.runs(p)
		if len(rs) > limit {
			f.t.Fatalf("page %d has %d runs, limit %d", pages, len(rs), limit)
		}
		got = append(got, runIDs(rs)...)
		if len(rs) < limit {
			return got
		}
		p.Before = rs[len(rs)-1].Cursor()
		if more != nil {
			more(pages, p.Before)
		}
	}
}

// testRunListPaging pages through runs that share created_at times (the id breaks the tie) and were
// submitted out of order, while more runs are created.
func testRunListPaging(t *testing.T, f *fixture) {
	p := diamond("etl")
	var known []listedRun
	var evs []event.Event
	base := f.now()
	// 23 runs at 9 distinct times, up to 3 at one time, submitted in an order unrelated to theirs.
	for i := range 23 {
		at := base.Add(time.Duration(i%9) * time.Millisecond)
		id := fmt.Sprintf("%s-%02d", runID(), (i*7)%23)
		known = append(known, listedRun{id: id, workflow: "etl", status: event.RunPending, by: "storetest", created: at})
		evs = append(evs, f.submitAt(id, p, at, "storetest"))
	}
	for i := 0; i < len(evs); i += 5 {
		f.events(evs[i:min(i+5, len(evs))]...)
	}
	f.mu.Lock()
	f.clock = base.Add(time.Second) // later runs are newer than all of the above
	f.mu.Unlock()

	want := expectRuns(known, store.RunListParams{})
	wantDeep(t, "one page of all", runIDs(f.runs(store.RunListParams{Limit: 100})), want)
	for _, limit := range []int{1, 4, 23, 30} {
		wantDeep(t, fmt.Sprintf("paged by %d", limit), f.pageRuns(store.RunListParams{}, limit, nil), want)
	}

	// Runs created while paging: newer ones (the usual case), and one at the cursor's time with a
	// greater id, come before the cursor and never show up in later pages; one at the cursor's time
	// with a smaller id, and a late submission with an old time, come after it and do.
	var behind []listedRun
	got := f.pageRuns(store.RunListParams{}, 4, func(pages int, c *store.RunCursor) {
		if pages != 2 {
			return
		}
		var evs []event.Event
		for range 5 {
			r := listedRun{id: runID(), workflow: "etl", status: event.RunPending, by: "storetest", created: f.now()}
			known = append(known, r)
			evs = append(evs, f.submitAt(r.id, p, r.created, "storetest"))
		}
		ahead := listedRun{id: c.ID + "~", workflow: "etl", status: event.RunPending, by: "storetest", created: c.CreatedAt}
		behind = []listedRun{
			{id: c.ID[:len(c.ID)-1], workflow: "etl", status: event.RunPending, by: "storetest", created: c.CreatedAt},
			{id: runID(), workflow: "etl", status: event.RunPending, by: "storetest", created: base.Add(-time.Millisecond)},
		}
		for _, r := range append([]listedRun{ahead}, behind...) {
			evs = append(evs, f.submitAt(r.id, p, r.created, "storetest"))
		}
		f.events(evs...)
		known = append(known, ahead)
		known = append(known, behind...)
	})
	if len(behind) == 0 {
		t.Fatal("paging ended before its third page")
	}
	wantDeep(t, "paged while runs were created", got, expectRuns(append(slices.Clone(known[:len(want)]), behind...), store.RunListParams{}))
	if len(got) != len(want)+2 {
		t.Fatalf("paged %d runs, want %d", len(got), len(want)+2)
	}
	// A cursor is a position, not a run: one between two runs' times works too, and a fresh first
	// page has the new runs.
	wantDeep(t, "all after paging", f.pageRuns(store.RunListParams{}, 7, nil), expectRuns(known, store.RunListParams{}))
	mid := &store.RunCursor{CreatedAt: base.Add(4*time.Millisecond + 500*time.Microsecond), ID: ""}
	wantDeep(t, "before a time between runs", runIDs(f.runs(store.RunListParams{Before: mid, Limit: 100})),
		expectRuns(known, store.RunListParams{Before: mid}))
	if n := len(expectRuns(known, store.RunListParams{Before: mid})); n == 0 || n == len(known) {
		t.Fatalf("the cursor between runs keeps %d of %d runs; the case needs some on both sides", n, len(known))
	}
}

// testRunListFilters checks every filter alone and combined, against the same filters applied in Go.
func testRunListFilters(t *testing.T, f *fixture) {
	etl, ml := diamond("etl"), plan("ml", "train", task("train", 0))
	bys := []string{"cron", "api:alice", "api:bob"}
	var known []listedRun
	var evs []event.Event
	base := f.now()
	for i := range 30 {
		p := etl
		if i%3 == 0 {
			p = ml
		}
		at := base.Add(time.Duration(i/2) * time.Millisecond) // pairs share a time
		prefix := "a"
		if i%4 == 0 {
			prefix = "b"
		}
		id := prefix + "-" + runID()
		known = append(known, listedRun{id: id, workflow: p.Name, status: event.RunPending, by: bys[i%len(bys)], created: at})
		evs = append(evs, f.submitAt(id, p, at, bys[i%len(bys)]))
	}
	f.events(evs...)
	f.mu.Lock()
	f.clock = base.Add(time.Second)
	f.mu.Unlock()
	// Some runs finish, so that status filters something.
	var fin []event.Event
	for i := 0; i < len(known); i += 5 {
		fin = append(fin, f.ev(event.TypeRunStarted, known[i].id, "", 0), f.finished(known[i].id, event.RunSuccess, ""))
		known[i].status = event.RunSuccess
	}
	f.events(fin...)

	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	cursor := &store.RunCursor{CreatedAt: known[19].created, ID: known[19].id}
	cases := map[string]store.RunListParams{
		"triggered by":              {TriggeredBy: "api:alice"},
		"triggered by is exact":     {TriggeredBy: "api"},
		"since is inclusive":        {Since: at(10)},
		"until is exclusive":        {Until: at(10)},
		"since and until":           {Since: at(3), Until: at(7)},
		"empty window":              {Since: at(7), Until: at(7)},
		"before":                    {Before: cursor},
		"workflow and triggered by": {Workflow: "etl", TriggeredBy: "api:alice"},
		"status and window":         {Status: event.RunSuccess, Since: at(2), Until: at(12)},
		"everything": {Workflow: "etl", Status: event.RunPending, TriggeredBy: "api:bob", Since: at(1),
			Until: at(14), Before: cursor},
		"prefix, window and cursor": {IDPrefix: "a-", Since: at(2), Before: cursor},
	}
	for name, p := range cases {
		want := expectRuns(known, p)
		if p.IDPrefix != "" {
			want = slices.DeleteFunc(want, func(id string) bool { return id[:len(p.IDPrefix)] != p.IDPrefix })
		}
		wantDeep(t, name, runIDs(f.runs(store.RunListParams{
			Workflow: p.Workflow, Status: p.Status, IDPrefix: p.IDPrefix, TriggeredBy: p.TriggeredBy,
			Since: p.Since, Until: p.Until, Before: p.Before, Limit: 100,
		})), want)
		if name != "empty window" && name != "triggered by is exact" && len(want) == 0 {
			t.Errorf("%s: the case keeps no run, so it checks nothing", name)
		}
		// Paging with the filters gives the same runs.
		wantDeep(t, name+", paged", f.pageRuns(p, 3, nil), want)
	}
	// The limit applies after the filters.
	wantDeep(t, "filtered with limit", runIDs(f.runs(store.RunListParams{Workflow: "etl", Since: at(5), Limit: 2})),
		expectRuns(known, store.RunListParams{Workflow: "etl", Since: at(5)})[:2])
}
