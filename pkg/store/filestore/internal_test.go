package filestore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, key := range []string{"", ".", "..", "a/b", "../x", "a.b", ".hidden", "%", "%25", "name with space", "ünï", "A-b_9"} {
		name := escape(key)
		if name == "." || name == ".." || name[0] == '.' || filepath.Base(name) != name {
			t.Errorf("escape(%q) = %q, not a plain file name", key, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("escape(%q) = escape(%q) = %q", key, other, name)
		}
		seen[name] = key
		if back := unescapeName(name); back != key {
			t.Errorf("unescapeName(escape(%q)) = %q", key, back)
		}
	}
}

// TestTornLogLine checks that a log file whose last line a crash cut short still reads, and that the
// next append does not merge into the torn line.
func TestTornLogLine(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	batch := func(seqs ...int64) store.ApplyBatchParams {
		lb := event.LogBatch{RunID: "r", Task: "t", Attempt: 1}
		for _, q := range seqs {
			lb.Lines = append(lb.Lines, event.LogLine{Seq: q, Stream: event.Stdout, Line: "x", Time: time.Now()})
		}
		return store.ApplyBatchParams{Logs: []event.LogBatch{lb}}
	}
	if _, err := s.ApplyBatch(t.Context(), batch(1, 2)); err != nil {
		t.Fatal(err)
	}
	path := s.logPath("r", "t", 1)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":3,"stream":"std`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The replay of the torn batch, then more.
	if _, err := s.ApplyBatch(t.Context(), batch(3, 4)); err != nil {
		t.Fatal(err)
	}
	lines, err := s.LogList(t.Context(), store.LogListParams{RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, l := range lines {
		seqs = append(seqs, l.Seq)
	}
	if len(seqs) != 4 || seqs[0] != 1 || seqs[3] != 4 {
		t.Errorf("seqs = %v, want [1 2 3 4]", seqs)
	}
}

// TestOutputNotJSON checks that an output that is not JSON is kept as a JSON string instead of
// failing the batch.
func TestOutputNotJSON(t *testing.T) {
	t.Parallel()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	id := event.NewID()
	sub := event.New(event.TypeRunSubmitted, id, "", 0)
	sub.Plan = &workflow.Plan{Name: "w", Hash: "h", Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop}}}
	ok := event.New(event.TypeTaskSucceeded, id, "a", 1)
	ok.Output = json.RawMessage(`{"unterminated`)
	if _, err := s.ApplyBatch(t.Context(), store.ApplyBatchParams{Events: []event.Event{sub, ok}}); err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	tasks, err := s.TaskList(t.Context(), store.TaskListParams{RunID: id})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("TaskList = %+v, %v", tasks, err)
	}
	var got string
	if err := json.Unmarshal(tasks[0].Output, &got); err != nil || got != `{"unterminated` {
		t.Errorf("output = %s (%v), want the text as a JSON string", tasks[0].Output, err)
	}
}
