package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/schedule"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// reg builds a registration of p (nil: a deletion) at the next clock tick.
func (f *fixture) reg(name string, rev uint64, p *workflow.Plan, by string) store.Registration {
	return store.Registration{Name: name, Revision: rev, Plan: p, AppliedAt: f.now(), AppliedBy: by}
}

// register applies a batch of registrations only.
func (f *fixture) register(regs ...store.Registration) {
	f.t.Helper()
	res := f.apply(store.ApplyBatchParams{Registrations: regs})
	if len(res.Orphans)+len(res.FinishedRuns) != 0 {
		f.t.Fatalf("registrations gave %+v, want an empty result", res)
	}
}

func (f *fixture) workflow(name string) store.Workflow {
	f.t.Helper()
	w, err := f.s.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: name})
	if err != nil {
		f.t.Fatalf("WorkflowGet(%s): %v", name, err)
	}
	return w
}

// versionHashes lists the hashes of a workflow's versions, newest first (nil for none).
func (f *fixture) versionHashes(name string, limit int) []string {
	f.t.Helper()
	vs, err := f.s.WorkflowVersionList(f.ctx, store.WorkflowVersionListParams{Workflow: name, Limit: limit})
	if err != nil {
		f.t.Fatalf("WorkflowVersionList(%s): %v", name, err)
	}
	var hashes []string
	for _, v := range vs {
		wantEq(f.t, "version.Workflow", v.Workflow, name)
		hashes = append(hashes, v.Hash)
	}
	return hashes
}

// wantRegistered checks a workflow's registration and current plan; current nil means the plan
// is not checked.
func (f *fixture) wantRegistered(what, name string, registered bool, r store.Registration, current *workflow.Plan) {
	f.t.Helper()
	w := f.workflow(name)
	wantEq(f.t, what+": Registered", w.Registered, registered)
	wantEq(f.t, what+": Revision", w.Revision, r.Revision)
	wantTime(f.t, what+": AppliedAt", w.AppliedAt, &r.AppliedAt)
	wantEq(f.t, what+": AppliedBy", w.AppliedBy, r.AppliedBy)
	if current != nil {
		wantEq(f.t, what+": CurrentHash", w.CurrentHash, current.Hash)
		wantEq(f.t, what+": Description", w.Description, current.Description)
		wantEq(f.t, what+": Schedule", w.Schedule, current.ScheduleCron())
	}
}

// wantPlan checks that the version of p's hash is stored, of workflow name, with p as its plan.
func (f *fixture) wantPlan(what, name string, p *workflow.Plan) store.WorkflowVersion {
	f.t.Helper()
	v, err := f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: p.Hash})
	if err != nil {
		f.t.Fatalf("%s: WorkflowVersionGet: %v", what, err)
	}
	wantEq(f.t, what+": version.Workflow", v.Workflow, name)
	var got workflow.Plan
	if err := json.Unmarshal(v.Plan, &got); err != nil {
		f.t.Fatalf("%s: stored plan does not decode: %v", what, err)
	}
	wantDeep(f.t, what+": version.Plan", &got, p)
	return v
}

func (f *fixture) wantNoVersion(what, hash string) {
	f.t.Helper()
	if _, err := f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: hash}); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("%s: WorkflowVersionGet error = %v, want ErrNotFound", what, err)
	}
}

func testRegistration(t *testing.T, f *fixture) {
	p := diamond("etl")
	p.Schedule = &schedule.Spec{Cron: "0 * * * *"}
	r := f.reg("etl", 3, p, "alice")
	f.register(r) // a batch of registrations only
	f.wantRegistered("registered", "etl", true, r, p)
	w := f.workflow("etl")
	wantEq(t, "RunCount", w.RunCount, 0)
	wantTime(t, "CreatedAt", &w.CreatedAt, &r.AppliedAt)
	wantTime(t, "UpdatedAt", &w.UpdatedAt, &r.AppliedAt)
	v := f.wantPlan("registered", "etl", p)
	wantTime(t, "version.CreatedAt", &v.CreatedAt, &r.AppliedAt)
	wantDeep(t, "versions", f.versionHashes("etl", 0), []string{p.Hash})
	wantDeep(t, "listed", f.workflows(store.WorkflowListParams{}), []store.Workflow{w})
	wantDeep(t, "listed registered", f.workflows(store.WorkflowListParams{Registered: true}), []store.Workflow{w})

	// A run of the registered plan: the workflow keeps its registration and counts the run.
	id := runID()
	sub := f.submit(id, p, "")
	f.events(sub)
	f.wantRegistered("after a run", "etl", true, r, p)
	wantEq(t, "RunCount after a run", f.workflow("etl").RunCount, 1)
	wantEq(t, "run.WorkflowHash", f.run(id).WorkflowHash, p.Hash)
	wantEq(t, "tasks of the run", len(f.tasks(id)), len(p.Tasks))
	wantDeep(t, "versions after a run", f.versionHashes("etl", 0), []string{p.Hash})
}

func testRegistrationReplayAndOrder(t *testing.T, f *fixture) {
	v1, v2, v3 := plan("etl", "one", task("a", 0)), plan("etl", "two", task("a", 0), task("b", 1, "a")), plan("etl", "three", task("c", 0))
	r5 := f.reg("etl", 5, v2, "alice")
	batch := store.ApplyBatchParams{Registrations: []store.Registration{r5}}
	f.apply(batch)
	first := f.snapshot()
	f.apply(batch) // a replay
	f.equalSnapshots(first, f.snapshot())
	f.wantRegistered("replayed", "etl", true, r5, v2)

	// An older revision arriving late, and the same revision again with another plan, change nothing,
	// not even the versions.
	f.register(f.reg("etl", 4, v1, "bob"), f.reg("etl", 5, v3, "mallory"))
	f.equalSnapshots(first, f.snapshot())
	f.wantRegistered("after older revisions", "etl", true, r5, v2)
	f.wantNoVersion("older revision", v1.Hash)
	f.wantNoVersion("same revision", v3.Hash)

	r7 := f.reg("etl", 7, v3, "carol")
	f.register(r7)
	f.wantRegistered("newer revision", "etl", true, r7, v3)
	wantDeep(t, "versions newest first", f.versionHashes("etl", 0), []string{v3.Hash, v2.Hash})
	wantTime(t, "UpdatedAt moves forward", timeAt(f.workflow("etl").UpdatedAt), &r7.AppliedAt)

	// Several of one name in one batch apply as if one by one, in batch order.
	m1, m2 := plan("ml", "one", task("a", 0)), plan("ml", "two", task("b", 0))
	rm2, rm1 := f.reg("ml", 2, m2, "dave"), f.reg("ml", 1, m1, "dave")
	f.register(rm2, rm1)
	f.wantRegistered("newer first in a batch", "ml", true, rm2, m2)
	f.wantNoVersion("older after newer in a batch", m1.Hash)
	x1, x2 := plan("x", "one", task("a", 0)), plan("x", "two", task("b", 0))
	rx1, rx2 := f.reg("x", 1, x1, "erin"), f.reg("x", 2, x2, "erin")
	f.register(rx1, rx2)
	f.wantRegistered("older first in a batch", "x", true, rx2, x2)
	wantDeep(t, "versions of both", f.versionHashes("x", 0), []string{x2.Hash, x1.Hash})
	// Revision 0 never applies: the registry's revisions start at 1.
	f.register(f.reg("zero", 0, plan("zero", "", task("a", 0)), "erin"))
	if _, err := f.s.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: "zero"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WorkflowGet after a registration of revision 0: error = %v, want ErrNotFound", err)
	}
}

func testRegistrationDelete(t *testing.T, f *fixture) {
	v1, v2 := plan("etl", "one", task("a", 0)), plan("etl", "two", task("b", 0))
	r1 := f.reg("etl", 1, v1, "alice")
	f.register(r1)
	id := runID()
	f.events(f.submit(id, v1, ""))
	before := f.workflow("etl")

	del := f.reg("etl", 2, nil, "bob")
	f.register(del)
	f.wantRegistered("deleted", "etl", false, del, v1) // the row keeps its plan
	after := f.workflow("etl")
	wantTime(t, "UpdatedAt after a deletion", &after.UpdatedAt, &before.UpdatedAt)
	wantTime(t, "CreatedAt after a deletion", &after.CreatedAt, &before.CreatedAt)
	wantEq(t, "RunCount after a deletion", after.RunCount, 1)
	wantEq(t, "run after a deletion", f.run(id).WorkflowHash, v1.Hash)
	wantDeep(t, "versions after a deletion", f.versionHashes("etl", 0), []string{v1.Hash})
	wantEq(t, "listed", len(f.workflows(store.WorkflowListParams{})), 1)
	wantEq(t, "listed registered", len(f.workflows(store.WorkflowListParams{Registered: true})), 0)

	// The registration replayed after its deletion stays deleted; so does a replayed deletion.
	f.register(r1)
	f.register(del)
	f.wantRegistered("replayed after the deletion", "etl", false, del, v1)

	r3 := f.reg("etl", 3, v2, "carol")
	f.register(r3)
	f.wantRegistered("registered again", "etl", true, r3, v2)
	wantDeep(t, "versions registered again", f.versionHashes("etl", 0), []string{v2.Hash, v1.Hash})
	wantEq(t, "RunCount registered again", f.workflow("etl").RunCount, 1)

	// A deletion of a workflow the store never saw is kept, so that its older registration arriving
	// later is ignored too.
	g := plan("ghost", "boo", task("a", 0))
	gdel := f.reg("ghost", 4, nil, "dave")
	f.register(gdel)
	f.wantRegistered("unknown deleted", "ghost", false, gdel, nil)
	wantEq(t, "unknown deleted: CurrentHash", f.workflow("ghost").CurrentHash, "")
	wantDeep(t, "unknown deleted: versions", f.versionHashes("ghost", 0), []string(nil))
	f.register(f.reg("ghost", 3, g, "dave"))
	f.wantRegistered("older after an unknown deletion", "ghost", false, gdel, nil)
	f.wantNoVersion("older after an unknown deletion", g.Hash)
	g5 := f.reg("ghost", 5, g, "erin")
	f.register(g5)
	f.wantRegistered("registered after an unknown deletion", "ghost", true, g5, g)
}

func testRegistrationAndSubmissions(t *testing.T, f *fixture) {
	v1, v2 := plan("etl", "one", task("a", 0)), plan("etl", "two", task("a", 0), task("b", 1, "a"))
	// A workflow known from its runs only follows their plans, and is not registered.
	f.events(f.submit(runID(), v1, ""))
	w := f.workflow("etl")
	wantEq(t, "submitted: Registered", w.Registered, false)
	wantEq(t, "submitted: Revision", w.Revision, uint64(0))
	wantTime(t, "submitted: AppliedAt", w.AppliedAt, nil)
	wantEq(t, "submitted: AppliedBy", w.AppliedBy, "")
	wantEq(t, "submitted: CurrentHash", w.CurrentHash, v1.Hash)

	r1 := f.reg("etl", 1, v2, "alice")
	f.register(r1)
	f.wantRegistered("registered", "etl", true, r1, v2)

	// A run of an older plan, submitted after the registration (a trigger that raced it), neither
	// unregisters the workflow nor changes what is current.
	late := runID()
	sub := f.submit(late, v1, "")
	f.events(sub)
	f.wantRegistered("after a late run", "etl", true, r1, v2)
	wantEq(t, "late run.WorkflowHash", f.run(late).WorkflowHash, v1.Hash)
	wantTime(t, "UpdatedAt after a late run", timeAt(f.workflow("etl").UpdatedAt), &sub.Time)
	wantEq(t, "RunCount", f.workflow("etl").RunCount, 2)

	// Registrations apply before the events of their batch, whatever the order of times.
	n1, n2 := plan("new", "one", task("a", 0)), plan("new", "two", task("b", 0))
	nid := runID()
	nsub := f.submit(nid, n1, "")
	rn := f.reg("new", 1, n2, "bob")
	f.apply(store.ApplyBatchParams{Events: []event.Event{nsub}, Registrations: []store.Registration{rn}})
	f.wantRegistered("registered with a run in one batch", "new", true, rn, n2)
	wantEq(t, "run in the batch", f.run(nid).WorkflowHash, n1.Hash)
	wantDeep(t, "versions of the batch", f.versionHashes("new", 0), sortedByTimeThenHash(
		versionAt{n1.Hash, nsub.Time}, versionAt{n2.Hash, rn.AppliedAt}))
	wantTime(t, "workflow created by the registration", timeAt(f.workflow("new").CreatedAt), &rn.AppliedAt)

	// Once deleted from the registry, the workflow follows its runs again.
	del := f.reg("etl", 2, nil, "carol")
	f.register(del)
	f.events(f.submit(runID(), v1, ""))
	f.wantRegistered("a run after the deletion", "etl", false, del, v1)
}

type versionAt struct {
	hash string
	at   time.Time
}

// sortedByTimeThenHash returns the hashes in WorkflowVersionList order: newest first, then by hash.
func sortedByTimeThenHash(vs ...versionAt) []string {
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if vs[j].at.After(vs[i].at) || (vs[j].at.Equal(vs[i].at) && vs[j].hash < vs[i].hash) {
				vs[i], vs[j] = vs[j], vs[i]
			}
		}
	}
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.hash)
	}
	return out
}

func testWorkflowListFilters(t *testing.T, f *fixture) {
	// Registered: alpha, etl_daily, ÉTL-x; known from runs only: Beta-etl, gamma%, delta.
	var evs []event.Event
	for _, name := range []string{"Beta-etl", "gamma%", "delta", "delta"} {
		evs = append(evs, f.submit(runID(), diamond(name), ""))
	}
	f.events(evs...)
	f.register(f.reg("alpha", 1, diamond("alpha"), "a"), f.reg("etl_daily", 1, diamond("etl_daily"), "a"),
		f.reg("ÉTL-x", 1, diamond("ÉTL-x"), "a"), f.reg("gone", 1, diamond("gone"), "a"))
	f.register(f.reg("gone", 2, nil, "a"))

	names := func(p store.WorkflowListParams) []string {
		var out []string
		for _, w := range f.workflows(p) {
			out = append(out, w.Name)
		}
		return out
	}
	// Names sort byte for byte: upper case before lower case, non-ASCII last.
	all := []string{"Beta-etl", "alpha", "delta", "etl_daily", "gamma%", "gone", "ÉTL-x"}
	wantDeep(t, "all", names(store.WorkflowListParams{}), all)
	wantDeep(t, "registered", names(store.WorkflowListParams{Registered: true}), []string{"alpha", "etl_daily", "ÉTL-x"})
	for sub, want := range map[string][]string{
		"ETL":   {"Beta-etl", "etl_daily"}, // ASCII case is ignored; É is not E
		"etl":   {"Beta-etl", "etl_daily"},
		"TL-":   {"ÉTL-x"},
		"É":     {"ÉTL-x"},
		"é":     nil, // only ASCII letters fold
		"%":     {"gamma%"},
		"_":     {"etl_daily"},
		"a-E":   {"Beta-etl"},
		"delta": {"delta"},
		"nope":  nil,
	} {
		wantDeep(t, "name contains "+sub, names(store.WorkflowListParams{NameContains: sub}), want)
	}
	wantDeep(t, "after", names(store.WorkflowListParams{After: "delta"}), []string{"etl_daily", "gamma%", "gone", "ÉTL-x"})
	wantDeep(t, "after a name that is not stored", names(store.WorkflowListParams{After: "b"}), []string{"delta", "etl_daily", "gamma%", "gone", "ÉTL-x"})
	wantDeep(t, "limit", names(store.WorkflowListParams{Limit: 2}), []string{"Beta-etl", "alpha"})
	wantDeep(t, "combined", names(store.WorkflowListParams{Registered: true, NameContains: "L", After: "alpha", Limit: 1}), []string{"etl_daily"})

	// Paging by name, with filters, returns each workflow once, in order.
	for _, p := range []store.WorkflowListParams{{}, {Registered: true}, {NameContains: "A"}} {
		var got []string
		for page := 0; ; page++ {
			if page > len(all) {
				t.Fatal("paging does not end")
			}
			p.Limit = 2
			ws := f.workflows(p)
			for _, w := range ws {
				got = append(got, w.Name)
			}
			if len(ws) < 2 {
				break
			}
			p.After = ws[len(ws)-1].Name
		}
		q := p
		q.After, q.Limit = "", 0
		wantDeep(t, fmt.Sprintf("paged %+v", q), got, names(q))
	}

	// Run counts hold under the filters.
	for _, w := range f.workflows(store.WorkflowListParams{NameContains: "delta"}) {
		wantEq(t, "delta.RunCount", w.RunCount, 2)
	}
	wantEq(t, "WorkflowGet(delta).RunCount", f.workflow("delta").RunCount, 2)
}

func testWorkflowGetAndVersions(t *testing.T, f *fixture) {
	_, err := f.s.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: "nope"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WorkflowGet(unknown) error = %v, want ErrNotFound", err)
	}
	if err == nil || err.Error() == store.ErrNotFound.Error() {
		t.Errorf("WorkflowGet(unknown) error %v should name what was not found", err)
	}
	wantDeep(t, "versions of an unknown workflow", f.versionHashes("nope", 0), []string(nil))

	v1, v2, v3, v4 := plan("etl", "1", task("a", 0)), plan("etl", "2", task("b", 0)), plan("etl", "3", task("c", 0)), plan("etl", "4", task("d", 0))
	s1 := f.submit(runID(), v1, "")
	s2 := f.submit(runID(), v2, "")
	// v3 and v4 share a time: the hash orders them.
	s3, s4 := f.submit(runID(), v3, ""), f.submit(runID(), v4, "")
	s4.Time = s3.Time
	f.events(s1, s2)
	f.events(s4, s3)
	f.events(f.submit(runID(), plan("other", "", task("a", 0)), ""))
	want := sortedByTimeThenHash(versionAt{v1.Hash, s1.Time}, versionAt{v2.Hash, s2.Time}, versionAt{v3.Hash, s3.Time}, versionAt{v4.Hash, s4.Time})
	wantDeep(t, "versions", f.versionHashes("etl", 0), want)
	wantDeep(t, "versions, limit 2", f.versionHashes("etl", 2), want[:2])

	vs, err := f.s.WorkflowVersionList(f.ctx, store.WorkflowVersionListParams{Workflow: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	byHash := map[string]*workflow.Plan{v1.Hash: v1, v2.Hash: v2, v3.Hash: v3, v4.Hash: v4}
	times := map[string]time.Time{v1.Hash: s1.Time, v2.Hash: s2.Time, v3.Hash: s3.Time, v4.Hash: s4.Time}
	for _, v := range vs {
		var got workflow.Plan
		if err := json.Unmarshal(v.Plan, &got); err != nil {
			t.Fatalf("listed plan does not decode: %v", err)
		}
		wantDeep(t, "listed plan "+v.Hash, &got, byHash[v.Hash])
		at := times[v.Hash]
		wantTime(t, "listed version.CreatedAt", &v.CreatedAt, &at)
	}

	w := f.workflow("etl")
	wantEq(t, "Name", w.Name, "etl")
	wantEq(t, "RunCount", w.RunCount, 4)
	wantDeep(t, "WorkflowGet is what WorkflowList lists", f.workflows(store.WorkflowListParams{NameContains: "etl"}), []store.Workflow{w})
}
