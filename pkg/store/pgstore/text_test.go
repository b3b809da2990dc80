package pgstore_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// TestTextPostgresRejects checks that bytes PostgreSQL's text and jsonb types refuse (NUL, invalid
// UTF-8, a \u0000 escape) are stored replaced instead of failing the batch.
func TestTextPostgresRejects(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	id := event.NewID()
	sub := event.New(event.TypeRunSubmitted, id, "", 0)
	sub.Plan = &workflow.Plan{Name: "w", Description: "nul\x00here", Hash: "h1", Tasks: []workflow.Task{{Name: "a", Executor: "noop"}, {Name: "b", Index: 1, Executor: "noop"}}}
	ok := event.New(event.TypeTaskSucceeded, id, "a", 1)
	ok.Output = json.RawMessage("{\"s\":\"a\\u0000b\",\"k\\u0000\":[1,\"\xff\"],\"n\":12345678901234567890}")
	ok.Error, ok.Instance = "bad \xff byte", "i\x00"
	bad := event.New(event.TypeTaskFailed, id, "b", 1)
	bad.Output = json.RawMessage(`{"unterminated`)
	fin := event.New(event.TypeRunFinished, id, "", 0)
	fin.Status, fin.Error = event.RunFailed, "x\x00y"
	_, err := s.ApplyBatch(ctx, store.ApplyBatchParams{
		Events: []event.Event{sub, ok, bad, fin},
		Logs: []event.LogBatch{{RunID: id, Task: "a", Attempt: 1, Lines: []event.LogLine{
			{Seq: 1, Stream: event.Stdout, Line: "bin\x00ary \xfe"},
		}}},
		DeadLetters: []store.DeadLetter{{Stream: "S", Seq: 1, Reason: "r\x00", Data: []byte{0, 0xff}}},
	})
	if err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	tasks, err := s.TaskList(ctx, store.TaskListParams{RunID: id})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("TaskList = %v, %v", tasks, err)
	}
	var text string
	if err := json.Unmarshal(tasks[1].Output, &text); err != nil || text != `{"unterminated` {
		t.Errorf("output that is not JSON = %s (%v), want its text as a JSON string", tasks[1].Output, err)
	}
	var out map[string]any
	if err := json.Unmarshal(tasks[0].Output, &out); err != nil {
		t.Fatalf("output %s: %v", tasks[0].Output, err)
	}
	if out["s"] != "a\uFFFDb" || out["k\uFFFD"] == nil {
		t.Errorf("output = %s", tasks[0].Output)
	}
	if got := string(tasks[0].Output); !json.Valid(tasks[0].Output) || !strings.Contains(got, "12345678901234567890") {
		t.Errorf("output lost a large number: %s", got)
	}
	if tasks[0].Error != "bad \uFFFD byte" {
		t.Errorf("error = %q", tasks[0].Error)
	}
	lines, err := s.LogList(ctx, store.LogListParams{RunID: id})
	if err != nil || len(lines) != 1 || lines[0].Line != "bin\uFFFDary \uFFFD" {
		t.Errorf("log lines = %+v, %v", lines, err)
	}
	r, err := s.RunGet(ctx, store.RunGetParams{ID: id})
	if err != nil || r.Error != "x\uFFFDy" {
		t.Errorf("run = %+v, %v", r, err)
	}
	dls, err := s.DeadLetterList(ctx, store.DeadLetterListParams{})
	if err != nil || len(dls) != 1 || string(dls[0].Data) != "\x00\xff" {
		t.Errorf("dead letters = %+v, %v", dls, err)
	}
}
