package recorder

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/workflow"
)

func regItem(name string, rev uint64) item {
	return item{stream: RegistryStream, reg: &store.Registration{Name: name, Revision: rev}}
}

func revisions(items []item) []uint64 {
	var out []uint64
	for _, it := range items {
		out = append(out, it.reg.Revision)
	}
	return out
}

func wantRevisions(t *testing.T, what string, items []item, want ...uint64) {
	t.Helper()
	got := revisions(items)
	if len(got) != len(want) {
		t.Fatalf("%s: revisions %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: revisions %v, want %v", what, got, want)
		}
	}
}

// Registrations are taken oldest first, by one writer at a time, and what a failed write hands back
// comes first again; a full queue makes the watcher wait.
func TestRegistrationsQueue(t *testing.T) {
	t.Parallel()
	r := newRegistrations(2)
	ctx := context.Background()
	for _, rev := range []uint64{1, 2} {
		if !r.add(ctx, regItem("a", rev)) {
			t.Fatal("add refused below the limit")
		}
	}
	full, cancel := context.WithCancel(ctx)
	cancel()
	if r.add(full, regItem("a", 3)) {
		t.Fatal("add past the limit did not wait")
	}

	first := r.take(1)
	wantRevisions(t, "first take", first, 1)
	if more := r.take(5); more != nil {
		t.Fatalf("took %v while another writer holds registrations", revisions(more))
	}
	added := make(chan bool, 1)
	go func() { added <- r.add(ctx, regItem("a", 3)) }()
	if !<-added {
		t.Fatal("add with room refused")
	}
	r.done(first, false)
	select {
	case <-r.queued:
	default:
		t.Fatal("no signal after registrations were handed back")
	}
	all := r.take(5)
	wantRevisions(t, "after a failed write", all, 1, 2, 3)
	r.done(all, true)
	if left := r.take(5); left != nil {
		t.Fatalf("left after the commit: %v", revisions(left))
	}
}

// batchRecordingStore keeps the batches it applies.
type batchRecordingStore struct {
	store.Store
	mu      sync.Mutex
	batches []store.ApplyBatchParams
}

func (s *batchRecordingStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	s.mu.Lock()
	s.batches = append(s.batches, p)
	s.mu.Unlock()
	return s.Store.ApplyBatch(ctx, p)
}

// An event batch takes the registrations waiting: both are written in one transaction.
func TestRegistrationsShareTheEventBatch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := bustest.Start(t)
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ork.db")
	if err := schema.Up(ctx, "sqlite://"+path); err != nil {
		t.Fatal(err)
	}
	inner, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = inner.Close() }()
	st := &batchRecordingStore{Store: inner}
	s, err := New(b, st, Config{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}

	p := &workflow.Plan{Name: "shared", Hash: "shared-hash", Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop}}}
	reg := regItem("shared", 7)
	reg.reg.Plan, reg.reg.AppliedBy = p, "test"
	if !s.regs.add(ctx, reg) {
		t.Fatal("queueing the registration")
	}
	run := event.NewID()
	sub := event.New(event.TypeRunSubmitted, run, "", 0)
	sub.Workflow, sub.Plan = p.Name, p
	m, err := bus.EventMsg(&sub)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	cons, err := b.Consumer(ctx, s.spec(event.StreamEvents, event.ConsumerRecorderEvents))
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for msg := range fetched.Messages() {
		msgs = append(msgs, msg)
	}
	if len(msgs) != 1 {
		t.Fatalf("fetched %d messages, want the submission", len(msgs))
	}

	s.handle(ctx, event.StreamEvents, msgs)
	if len(st.batches) != 1 || len(st.batches[0].Events) != 1 || len(st.batches[0].Registrations) != 1 {
		t.Fatalf("batches %+v, want one with the submission and the registration", st.batches)
	}
	w, err := inner.WorkflowGet(ctx, store.WorkflowGetParams{Name: "shared"})
	if err != nil || !w.Registered || w.Revision != 7 || w.CurrentHash != p.Hash || w.RunCount != 1 {
		t.Errorf("workflow %+v, %v; want registered at 7 with its run", w, err)
	}
	if left := s.regs.take(10); left != nil {
		t.Errorf("registrations left queued: %v", revisions(left))
	}
}
