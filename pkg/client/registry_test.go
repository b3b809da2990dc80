package client_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/workflow"
)

// Apply registers, re-applying the same plan changes nothing, a new plan is a new revision; the
// registry lists, reads, deletes, and a deleted name can be applied again.
func TestRegistry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	p := testPlan()
	reg, changed, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: p, By: "test"})
	if err != nil || !changed || reg.Revision == 0 || reg.AppliedBy != "test" {
		t.Fatalf("first apply: %+v changed=%v err=%v", reg, changed, err)
	}
	again, changed, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: testPlan(), By: "other"})
	if err != nil || changed || again.Revision != reg.Revision || again.AppliedBy != "test" {
		t.Fatalf("same plan again: %+v changed=%v err=%v, want the first registration", again, changed, err)
	}
	p2 := testPlan()
	p2.Hash = "def456"
	next, changed, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: p2, By: "test"})
	if err != nil || !changed || next.Revision <= reg.Revision {
		t.Fatalf("new version: %+v changed=%v err=%v", next, changed, err)
	}
	other := testPlan()
	other.Name = "another"
	if _, _, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: other}); err != nil {
		t.Fatal(err)
	}
	got, err := f.client.Workflow(f.ctx, "hello")
	if err != nil || got.Plan.Hash != "def456" {
		t.Fatalf("Workflow(hello) = %+v, %v", got, err)
	}
	all, err := f.client.Workflows(f.ctx)
	if err != nil || len(all) != 2 || all[0].Plan.Name != "another" || all[1].Plan.Name != "hello" {
		t.Fatalf("Workflows = %+v, %v; want another, hello", all, err)
	}
	if err := f.client.Unregister(f.ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Workflow(f.ctx, "hello"); !errors.Is(err, client.ErrNotRegistered) {
		t.Fatalf("after delete: %v, want ErrNotRegistered", err)
	}
	if err := f.client.Unregister(f.ctx, "hello"); !errors.Is(err, client.ErrNotRegistered) {
		t.Fatalf("deleting twice: %v, want ErrNotRegistered", err)
	}
	if all, err := f.client.Workflows(f.ctx); err != nil || len(all) != 1 {
		t.Fatalf("after delete, Workflows = %+v, %v", all, err)
	}
	if back, changed, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: testPlan()}); err != nil || !changed || back.Revision <= next.Revision {
		t.Fatalf("applying a deleted name again: %+v changed=%v err=%v", back, changed, err)
	}
	bad := testPlan()
	bad.Tasks = nil
	if _, _, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: bad}); err == nil {
		t.Fatal("an invalid plan was registered")
	}
}

// Concurrent applies of different versions of one name all succeed, each a revision of its own, and
// the registry ends with one of them.
func TestRegistryConcurrentApply(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var wg sync.WaitGroup
	revs := make([]uint64, 8)
	errs := make([]error, 8)
	for i := range revs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := testPlan()
			p.Hash = string(rune('a'+i)) + "hash"
			reg, _, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: p})
			revs[i], errs[i] = reg.Revision, err
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		if seen[revs[i]] {
			t.Fatalf("two applies got revision %d", revs[i])
		}
		seen[revs[i]] = true
	}
	if _, err := f.client.Workflow(f.ctx, "hello"); err != nil {
		t.Fatal(err)
	}
}

// Trigger runs the registered plan by name with checked parameters; an unknown name is refused.
func TestTrigger(t *testing.T) {
	t.Parallel()
	f := setup(t)
	p := testPlan()
	p.Params = []workflow.Param{{Name: "n", Type: &workflow.Type{Kind: workflow.KindInt}}}
	if _, _, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.Trigger(f.ctx, client.TriggerParams{Workflow: "hello"}); err == nil {
		t.Fatal("a trigger without a required param was submitted")
	}
	before := f.submittedCount(t)
	trig := client.TriggerParams{Workflow: "hello", Params: map[string]json.RawMessage{"n": json.RawMessage("3")}, IdempotencyKey: "k1"}
	first, err := f.client.Trigger(f.ctx, trig)
	if err != nil || first.RunID == "" || first.Plan.Hash != p.Hash || first.Repeat {
		t.Fatalf("trigger: %+v %v", first, err)
	}
	again, err := f.client.Trigger(f.ctx, trig)
	if err != nil || again.RunID != first.RunID || !again.Repeat {
		t.Fatalf("the same key again: %+v %v, want a repeat of %s", again, err, first.RunID)
	}
	if got := f.submittedCount(t); got != before+1 {
		t.Fatalf("%d submissions, want %d", got, before+1)
	}
	if _, err := f.client.Trigger(f.ctx, client.TriggerParams{Workflow: "nope"}); !errors.Is(err, client.ErrNotRegistered) {
		t.Fatalf("unknown workflow: %v", err)
	}
}
