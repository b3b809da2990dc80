package executor

import (
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// memoryGrowth is how much an executor process may grow over its idle size while two tasks print
// 1 GiB of log and 10 MB lines: its bounded buffers (per attempt at most LogMaxBytes of unshipped
// lines, one LogLineMaxBytes line, the output line and the tail) and the garbage collector's slack,
// never the task's output. The race detector's shadow memory roughly triples it.
func memoryGrowth() int64 {
	if raceEnabled {
		return 144 << 20
	}
	return 48 << 20
}

func TestHugeOutputKeepsTheExecutorsMemoryBounded(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Types = []string{workflow.ExecutorProcess}
	cfg.Concurrency = 2
	child := h.startChild(t, cfg)
	idle := peakRSS(t, child.Process.Pid)

	// 1 GiB in lines of 4 KiB, then the output line.
	gib := h.dispatch(t, event.Dispatch{Task: processTask("gib", "python3", "-c",
		`import sys
chunk = (b"x" * 4095 + b"\n") * 256
for _ in range(1024):
    sys.stdout.buffer.write(chunk)
sys.stdout.buffer.write(b'ORK_OUTPUT:"done"\n')`)})
	// 20 lines of 10 MB each.
	long := h.dispatch(t, event.Dispatch{Task: processTask("long", "python3", "-c",
		`import sys
line = b"a" * 10_000_000 + b"\n"
for _ in range(20):
    sys.stdout.buffer.write(line)`)})
	e := h.result(t, gib)
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `"done"`)
	wantSuccess(t, h.result(t, long))
	peak := peakRSS(t, child.Process.Pid)
	t.Logf("executor peak RSS %s, %s when idle", formatBytes(peak), formatBytes(idle))
	if peak-idle > memoryGrowth() {
		t.Errorf("the executor grew from %s to %s, more than %s", formatBytes(idle), formatBytes(peak), formatBytes(memoryGrowth()))
	}

	lines := h.lines(t, gib)
	marker := -1
	for i, l := range lines {
		if strings.HasPrefix(l.Line, "[ork: log truncated: over 8 MiB per attempt") {
			marker = i
		}
	}
	if marker < 0 {
		t.Fatalf("no truncation marker in the %d lines of the 1 GiB task", len(lines))
	}
	if tail := lines[marker+1:]; len(tail) == 0 || tail[len(tail)-1].Line != `ORK_OUTPUT:"done"` {
		t.Errorf("the lines after the marker do not end with the output line")
	}
	cut := h.lines(t, long)
	if len(cut) != 20 {
		t.Fatalf("the long-line task shipped %d lines, want 20", len(cut))
	}
	for _, l := range cut {
		if len(l.Line) > cfg.WithDefaults().LogLineMaxBytes+100 || !strings.HasSuffix(l.Line, "[ork: line cut at 64 KiB, 9934464 more bytes dropped]") {
			t.Fatalf("a 10 MB line was shipped as %d bytes ending %q", len(l.Line), l.Line[max(0, len(l.Line)-80):])
		}
	}
}
