package filestore

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
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
