package client_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

func (f *fixture) publishLogs(t *testing.T, runID, task string, n int) {
	t.Helper()
	for i := range n {
		b := event.LogBatch{V: event.SchemaVersion, RunID: runID, Task: task, Attempt: 1,
			Lines: []event.LogLine{{Seq: int64(i + 1), Stream: event.Stdout, Line: "line", Time: time.Now()}}}
		data, err := json.Marshal(&b)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.bus.Publish(f.ctx, bus.Msg{Subject: b.Subject(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) finish(t *testing.T, runID string) {
	t.Helper()
	e := event.New(event.TypeRunFinished, runID, "", 0)
	e.Status = event.RunSuccess
	f.publish(t, e)
}

type logsGot struct {
	seqs  []uint64
	tasks []string
}

func (f *fixture) followLogs(t *testing.T, p client.LogsParams) (<-chan logsGot, <-chan error) {
	t.Helper()
	got := make(chan logsGot, 1)
	errc := make(chan error, 1)
	go func() {
		var g logsGot
		err := f.client.FollowLogs(f.ctx, p, func(seq uint64, b event.LogBatch) error {
			g.seqs, g.tasks = append(g.seqs, seq), append(g.tasks, b.Task)
			return nil
		})
		got <- g
		errc <- err
	}()
	return got, errc
}

// The stored batches, then the live ones, then the end: each batch once, only the task asked for,
// and a resume after a sequence gets the rest.
func TestFollowLogs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	run := event.NewID()
	f.publishLogs(t, run, "a", 2)
	f.publishLogs(t, run, "b", 1)
	gotc, errc := f.followLogs(t, client.LogsParams{RunID: run})
	f.publishLogs(t, run, "a", 2) // live
	f.finish(t, run)
	g, err := <-gotc, <-errc
	if err != nil {
		t.Fatal(err)
	}
	if len(g.seqs) != 5 {
		t.Fatalf("got %d batches %v, want 5", len(g.seqs), g.tasks)
	}
	for i := 1; i < len(g.seqs); i++ {
		if g.seqs[i] <= g.seqs[i-1] {
			t.Fatalf("sequences not increasing: %v", g.seqs)
		}
	}
	// One task only.
	gotc, errc = f.followLogs(t, client.LogsParams{RunID: run, Task: "b"})
	if g, err = <-gotc, <-errc; err != nil || len(g.tasks) != 1 || g.tasks[0] != "b" {
		t.Fatalf("task b: %+v %v", g, err)
	}
	// Resumed after the second batch of the run.
	all := g
	gotc, errc = f.followLogs(t, client.LogsParams{RunID: run})
	all, _ = <-gotc, <-errc
	gotc, errc = f.followLogs(t, client.LogsParams{RunID: run, AfterSeq: all.seqs[1]})
	if g, err = <-gotc, <-errc; err != nil || len(g.seqs) != 3 || g.seqs[0] != all.seqs[2] {
		t.Fatalf("resumed after %d: %+v %v; whole %v", all.seqs[1], g, err, all.seqs)
	}
	// A finished run without a line ends at once.
	quiet := event.NewID()
	f.finish(t, quiet)
	gotc, errc = f.followLogs(t, client.LogsParams{RunID: quiet})
	if g, err = <-gotc, <-errc; err != nil || len(g.seqs) != 0 {
		t.Fatalf("a run without logs: %+v %v", g, err)
	}
}
