package bus_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(bustest.ServerLeftovers(), goleak.IgnoreTopFunction("time.Sleep"))...)
}

func setup(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	srv := bustest.Start(t)
	cfg.URL = srv.ClientURL()
	b, err := bus.Connect(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return b
}

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{})
	ctx := context.Background()
	before := streamConfigs(t, b)
	if err := b.Provision(ctx); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	after := streamConfigs(t, b)
	for name, cfg := range before {
		if fmt.Sprint(after[name]) != fmt.Sprint(cfg) {
			t.Errorf("stream %s changed on second provision:\n before %+v\n after  %+v", name, cfg, after[name])
		}
	}
	if _, err := b.JS.KeyValue(ctx, event.BucketRuns); err != nil {
		t.Errorf("run-state bucket missing: %v", err)
	}
}

// TestSchedulesRefuseRollups: the schedules bucket takes puts, creates and deletes, but no roll-up
// (a client allowed one key could otherwise purge them all), also after a second provision, which
// creates the bucket's config with roll-ups again.
func TestSchedulesRefuseRollups(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Provision(ctx); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	kv, err := b.Schedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "state.wf", []byte(`{}`)); err != nil {
		t.Fatalf("put: %v", err)
	}
	if _, err := kv.Create(ctx, "req.wf.1", []byte(`{}`)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := kv.Delete(ctx, "req.wf.1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	m := nats.NewMsg("$KV." + event.BucketSchedules + ".ctl.wf")
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupAll)
	if _, err := b.JS.PublishMsg(ctx, m); err == nil {
		t.Error("a roll-up of the schedules bucket was stored")
	}
	if _, err := kv.Get(ctx, "state.wf"); err != nil {
		t.Errorf("state.wf after the roll-up: %v", err)
	}
}

func streamConfigs(t *testing.T, b *bus.Bus) map[string]jetstream.StreamConfig {
	t.Helper()
	out := map[string]jetstream.StreamConfig{}
	for _, name := range []string{event.StreamEvents, event.StreamTasks, event.StreamLogs} {
		s, err := b.JS.Stream(context.Background(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		out[name] = s.CachedInfo().Config
	}
	return out
}

func TestPublishBatchDeduplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{})
	ctx := context.Background()
	var msgs []bus.Msg
	for i := range 100 {
		e := event.New(event.TypeTaskStarted, "run1", fmt.Sprintf("t%d", i), 1)
		m, err := bus.EventMsg(&e)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := b.Publish(ctx, msgs...); err != nil { // replay: same ids
		t.Fatalf("republish: %v", err)
	}
	s, err := b.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 100 {
		t.Fatalf("stream holds %d messages, want 100 (duplicates must be dropped)", info.State.Msgs)
	}
}

func TestPublishPastLimitIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{TasksMaxMsgs: 3})
	var msgs []bus.Msg
	for i := range 5 {
		msgs = append(msgs, bus.Msg{Subject: event.SubjectTasks("noop"), MsgID: fmt.Sprint(i), Data: []byte("{}")})
	}
	err := b.Publish(context.Background(), msgs...)
	if err == nil {
		t.Fatal("publishing past the stream's MaxMsgs succeeded; want an explicit error")
	}
}

func TestWorkBoundsInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const total, limit = 40, 4
	var msgs []bus.Msg
	for i := range total {
		msgs = append(msgs, bus.Msg{Subject: event.SubjectTasks("noop"), MsgID: fmt.Sprint(i), Data: []byte("{}")})
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	cons, err := b.Consumer(ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "w", Filters: []string{event.SubjectTasks("noop")}, AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var inFlight, peak, done atomic.Int32
	release := make(chan struct{})
	all := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- bus.Work(ctx, cons, limit, func(m jetstream.Msg) {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			if n == limit {
				once.Do(func() { close(release) })
			}
			<-release
			inFlight.Add(-1)
			_ = m.Ack()
			if done.Add(1) == total {
				close(all)
			}
		})
	}()
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d of %d messages handled", done.Load(), total)
	}
	if p := peak.Load(); p != limit {
		t.Errorf("peak in flight %d, want exactly %d", p, limit)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Work returned %v after cancel, want nil", err)
	}
}

func TestBatchesGroupsMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var msgs []bus.Msg
	for i := range 250 {
		e := event.New(event.TypeTaskStarted, "r", fmt.Sprintf("t%d", i), 1)
		m, _ := bus.EventMsg(&e)
		msgs = append(msgs, m)
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	cons, err := b.Consumer(ctx, bus.ConsumerSpec{Stream: event.StreamEvents, Durable: "rec", AckWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sizes := make(chan int, 300)
	errc := make(chan error, 1)
	go func() {
		errc <- bus.Batches(ctx, cons, 100, 200*time.Millisecond, func(batch []jetstream.Msg) {
			for _, m := range batch {
				_ = m.Ack()
			}
			sizes <- len(batch)
		})
	}()
	got, maxSize := 0, 0
	deadline := time.After(20 * time.Second)
	for got < 250 {
		select {
		case n := <-sizes:
			got += n
			maxSize = max(maxSize, n)
			if n > 100 {
				t.Fatalf("batch of %d exceeds the maximum of 100", n)
			}
		case <-deadline:
			t.Fatalf("received %d of 250", got)
		}
	}
	if maxSize < 2 {
		t.Errorf("largest batch %d: messages were not grouped", maxSize)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Batches returned %v after cancel", err)
	}
}

func TestPublishAckReportsDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{})
	e := event.New(event.TypeTaskStarted, "run1", "t", 1)
	m, err := bus.EventMsg(&e)
	if err != nil {
		t.Fatal(err)
	}
	first, err := b.PublishAck(context.Background(), m)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	again, err := b.PublishAck(context.Background(), m)
	if err != nil {
		t.Fatalf("republish: %v", err)
	}
	if first.Duplicate || !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("first %+v, again %+v: want the second one a duplicate of the first", first, again)
	}
}

// A publish whose ack never comes (here a subscriber takes the message and never answers, as when a
// server restarts between storing and acknowledging) is tried again with the same id until stored.
func TestPublishUntilStoredOutlivesALostAck(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{PublishTryTimeout: 200 * time.Millisecond})
	const subject = "ork-test.lost-ack"
	tries := make(chan struct{}, 16)
	sub, err := b.NC.Subscribe(subject, func(*nats.Msg) { tries <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.PublishUntilStored(ctx, bus.Msg{Subject: subject, MsgID: "only-once", Data: []byte("{}")})
	}()
	select {
	case <-tries:
	case err := <-done:
		t.Fatalf("PublishUntilStored returned %v before anything took the message", err)
	}
	// The swallower leaves and a stream takes the subject: the next try is stored.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	st, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "LOSTACK", Subjects: []string{subject}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("PublishUntilStored: %v", err)
	}
	// Tried again, stored once.
	if err := b.PublishUntilStored(ctx, bus.Msg{Subject: subject, MsgID: "only-once", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("the stream holds %d messages, want 1", info.State.Msgs)
	}
}

// A stream that refuses a message for good (full, discarding new ones) gets no retries: the caller
// hears it at once.
func TestPublishUntilStoredStopsAtARefusal(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{TasksMaxMsgs: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.PublishUntilStored(ctx, bus.Msg{Subject: event.SubjectTasks("noop"), MsgID: "1", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	err := b.PublishUntilStored(ctx, bus.Msg{Subject: event.SubjectTasks("noop"), MsgID: "2", Data: []byte("{}")})
	if err == nil || !bus.RefusedForGood(err) {
		t.Fatalf("publishing to a full stream: %v; want the stream's refusal", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the refusal was retried until the deadline")
	}
	if err := b.PublishUntilStored(ctx, bus.Msg{Subject: event.SubjectTasks("noop"), Data: []byte("{}")}); err == nil {
		t.Fatal("a retried publish without a deduplication id was accepted")
	}
}
