package embedded_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // the database/sql driver the SQLite store uses

	"github.com/ork-go/ork/pkg/bus"
)

// BenchmarkMinimalLoop is the yardstick of the embedded engine's budget (docs/benchmarks.md,
// "Per-task budget"): the least a wide run of no-op tasks needs on the same parts, written without
// any of the engine's rules. An in-process JetStream on disk; a work-queue stream of dispatches and a
// stream of events; per task one dispatch, an executor that publishes a started event (waiting for
// its ack, as ours does) and a succeeded event; a scheduler that compare-and-swaps the run's state
// in a KV bucket for each succeeded event; a recorder that writes the events to SQLite in batches of
// up to 1,000 per transaction. Its tasks/s beside BenchmarkTaskCostWide's, run in one command, is
// the "≥ 75 % of the minimal loop" budget:
//
//	cd cmd/ork && go test -run '^$' -bench 'TaskCostWide|MinimalLoop' -benchtime 5x -count 3 ./internal/embedded/
func BenchmarkMinimalLoop(b *testing.B) {
	ctx := b.Context()
	dir := b.TempDir()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "MIN_TASKS", Subjects: []string{"min.task"}, Retention: jetstream.WorkQueuePolicy})
	must(err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "MIN_EVENTS", Subjects: []string{"min.ev.>"}})
	must(err)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "min_runs"})
	must(err)
	db, err := sql.Open("sqlite", filepath.Join(dir, "min.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	must(err)
	b.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, `CREATE TABLE events (id TEXT PRIMARY KEY, run TEXT, task TEXT, type TEXT, at TEXT)`)
	must(err)

	type msg struct {
		ID, Run, Task, Type string
		At                  time.Time
	}
	var succeeded, recorded atomic.Int64

	// The executor: 64 tasks in flight.
	execCons, err := js.CreateOrUpdateConsumer(ctx, "MIN_TASKS", jetstream.ConsumerConfig{Durable: "exec", AckPolicy: jetstream.AckExplicitPolicy})
	must(err)
	slots := make(chan struct{}, 64)
	execCtx, err := execCons.Consume(func(m jetstream.Msg) {
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			var d msg
			if json.Unmarshal(m.Data(), &d) != nil {
				_ = m.Term()
				return
			}
			ev := msg{ID: d.ID + ".s", Run: d.Run, Task: d.Task, Type: "started", At: time.Now()}
			data, _ := json.Marshal(ev)
			if _, err := js.Publish(ctx, "min.ev.started", data, jetstream.WithMsgID(ev.ID)); err != nil {
				return
			}
			ev.ID, ev.Type, ev.At = d.ID+".d", "succeeded", time.Now()
			data, _ = json.Marshal(ev)
			if _, err := js.Publish(ctx, "min.ev.succeeded", data, jetstream.WithMsgID(ev.ID)); err != nil {
				return
			}
			_ = m.Ack()
		}()
	}, jetstream.PullMaxMessages(64))
	must(err)
	b.Cleanup(execCtx.Stop)

	// The scheduler: one compare-and-swap of the run's state per succeeded task.
	schedCons, err := js.CreateOrUpdateConsumer(ctx, "MIN_EVENTS", jetstream.ConsumerConfig{Durable: "sched", FilterSubject: "min.ev.succeeded", AckPolicy: jetstream.AckExplicitPolicy})
	must(err)
	var mu sync.Mutex
	revs := map[string]uint64{}
	schedCtx, err := schedCons.Consume(func(m jetstream.Msg) {
		var e msg
		if json.Unmarshal(m.Data(), &e) != nil {
			_ = m.Term()
			return
		}
		mu.Lock()
		rev, err := kv.Update(ctx, e.Run, []byte(fmt.Sprintf(`{"done":%d}`, succeeded.Load()+1)), revs[e.Run])
		if err == nil {
			revs[e.Run] = rev
		}
		mu.Unlock()
		if err != nil {
			return // redelivered
		}
		_ = m.Ack()
		succeeded.Add(1)
	})
	must(err)
	b.Cleanup(schedCtx.Stop)

	// The recorder: batches of up to 1,000 events, one transaction each.
	recCons, err := js.CreateOrUpdateConsumer(ctx, "MIN_EVENTS", jetstream.ConsumerConfig{Durable: "rec", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	must(err)
	recCtx, recStop := context.WithCancel(ctx)
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		for recCtx.Err() == nil {
			batch, err := recCons.Fetch(1000, jetstream.FetchMaxWait(100*time.Millisecond))
			if err != nil {
				continue
			}
			var msgs []jetstream.Msg
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if len(msgs) == 0 {
				continue
			}
			tx, err := db.BeginTx(recCtx, nil)
			if err != nil {
				continue
			}
			ok := true
			for _, m := range msgs {
				var e msg
				if json.Unmarshal(m.Data(), &e) != nil {
					continue
				}
				if _, err := tx.Exec(`INSERT INTO events (id, run, task, type, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
					e.ID, e.Run, e.Task, e.Type, e.At.Format(time.RFC3339Nano)); err != nil {
					ok = false
					break
				}
			}
			if !ok || tx.Commit() != nil {
				_ = tx.Rollback()
				continue
			}
			for _, m := range msgs {
				_ = m.Ack()
			}
			recorded.Add(int64(len(msgs)))
		}
	}()
	b.Cleanup(func() { recStop(); <-recDone })

	run := func(n int) {
		id := fmt.Sprintf("run-%d", time.Now().UnixNano())
		wantSucceeded, wantRecorded := succeeded.Load()+int64(n), recorded.Load()+2*int64(n)
		mu.Lock()
		rev, err := kv.Create(ctx, id, []byte(`{"done":0}`))
		revs[id] = rev
		mu.Unlock()
		must(err)
		for i := range n {
			data, _ := json.Marshal(msg{ID: fmt.Sprintf("%s.%d", id, i), Run: id, Task: fmt.Sprintf("t%d", i), Type: "dispatch", At: time.Now()})
			if _, err := js.PublishAsync("min.task", data); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("dispatches not acknowledged within a minute")
		}
		deadline := time.Now().Add(time.Minute)
		for succeeded.Load() < wantSucceeded || recorded.Load() < wantRecorded {
			if time.Now().After(deadline) {
				b.Fatalf("run %s: %d/%d succeeded, %d/%d recorded after a minute", id, succeeded.Load(), wantSucceeded, recorded.Load(), wantRecorded)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	run(costTasks) // warm up
	before := time.Now()
	cpu := processCPU(b)
	b.ResetTimer()
	for range b.N {
		run(costTasks)
	}
	b.StopTimer()
	tasks := float64(b.N * costTasks)
	b.ReportMetric(tasks/time.Since(before).Seconds(), "tasks/s")
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(time.Millisecond)/tasks, "cpu-ms/task")
	b.ReportMetric(0, "ns/op")
}
