package executor

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestLogsAreShippedInSeqOrder(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.LogBatchLines = 64
	h.start(t, cfg)
	// 1000 stdout lines with a stderr line every 100; "echo" keeps them unbuffered.
	script := `i=1; while [ $i -le 1000 ]; do echo "out $i"; if [ $((i % 100)) -eq 0 ]; then echo "err $i" >&2; fi; i=$((i+1)); done`
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", script)})
	wantSuccess(t, h.result(t, d))
	lines := h.lines(t, d)
	if len(lines) != 1010 {
		t.Fatalf("got %d lines, want 1010", len(lines))
	}
	next := 1
	for i, l := range lines {
		if l.Seq != int64(i+1) {
			t.Fatalf("line %d has seq %d: seqs must be 1..n without gaps", i, l.Seq)
		}
		if l.Time.IsZero() {
			t.Fatalf("line %d has no time", i)
		}
		if l.Stream == event.Stdout {
			if l.Line != "out "+strconv.Itoa(next) {
				t.Fatalf("stdout line %d = %q, want %q", i, l.Line, "out "+strconv.Itoa(next))
			}
			next++
		} else if l.Stream != event.Stderr || !strings.HasPrefix(l.Line, "err ") {
			t.Fatalf("line %d: %+v", i, l)
		}
	}
	// Batches are bounded.
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	for _, lb := range h.logs.items {
		if lb.RunID == d.RunID && len(lb.Lines) > cfg.LogBatchLines {
			t.Errorf("a batch holds %d lines, over %d", len(lb.Lines), cfg.LogBatchLines)
		}
	}
}

func TestLogCapShipsMarkerAndTail(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.LogMaxBytes = 1000
	h.start(t, cfg)
	// 20000 lines of 9 bytes: far over the cap, and the task must still succeed with its output.
	script := `i=10000; while [ $i -lt 30000 ]; do echo "line $i"; i=$((i+1)); done; echo 'ORK_OUTPUT:"done"'`
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", script)})
	e := h.result(t, d)
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `"done"`)
	lines := h.lines(t, d)
	var shipped, marker int
	for i, l := range lines {
		if l.Seq != int64(i+1) {
			t.Fatalf("seq %d at %d", l.Seq, i)
		}
		if strings.Contains(l.Line, "[ork: log truncated") {
			marker = i
			break
		}
		shipped += len(l.Line)
	}
	if marker == 0 {
		t.Fatalf("no truncation marker in %d lines", len(lines))
	}
	if shipped > 1000 {
		t.Errorf("%d bytes shipped before the marker, over the 1000 cap", shipped)
	}
	tail := texts(lines[marker+1:])
	if len(tail) == 0 || tail[len(tail)-1] != `ORK_OUTPUT:"done"` || tail[len(tail)-2] != "line 29999" {
		t.Errorf("tail = %q, want the last lines", tail)
	}
	if len(tail) > logTailLines {
		t.Errorf("tail has %d lines, over %d", len(tail), logTailLines)
	}
}

func TestLongLinesAreCut(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.LogLineMaxBytes = 1024
	h.start(t, cfg)
	// A 10 MB line without a newline in between, then a short one.
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", `head -c 10000000 /dev/zero | tr '\0' 'a'; echo; echo short`)})
	wantSuccess(t, h.result(t, d))
	lines := texts(h.lines(t, d))
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	if !strings.HasPrefix(lines[0], strings.Repeat("a", 1024)+" [ork: line cut at 1 KiB, 9998976 more bytes dropped]") {
		t.Errorf("cut line = %.80q…", lines[0])
	}
	if lines[1] != "short" {
		t.Errorf("second line = %q", lines[1])
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t).WithDefaults()
	cfg.LogLineMaxBytes = 64
	cfg.OutputMaxBytes = 100
	d := &event.Dispatch{RunID: "r", Task: processTask("t"), Attempt: 1}
	sink := newLogSink(context.Background(), h.bus, cfg, nopLogger(), d)
	w := newLineWriter(event.Stdout, sink, cfg, true)
	// An output line split across writes, longer than a log line but within the output cap.
	out := `ORK_OUTPUT:{"k": "` + strings.Repeat("v", 70) + `"}`
	for _, chunk := range []string{"ORK_OU", "TPUT:", out[11:40], out[40:] + "\r\nplain\r\n", "tail"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	w.finish()
	sink.close()
	if !w.hasOutput || w.outputCut || string(w.output) != out[11:] {
		t.Errorf("output = %q (has %v, cut %v)", w.output, w.hasOutput, w.outputCut)
	}
	if sink.seq != 3 {
		t.Errorf("%d lines, want 3", sink.seq)
	}
	// Over the output cap: the last output line is cut.
	if _, err := w.Write([]byte("ORK_OUTPUT:\"" + strings.Repeat("z", 200) + "\"\n")); err != nil {
		t.Fatal(err)
	}
	if !w.outputCut || len(w.output) != cfg.OutputMaxBytes+1 {
		t.Errorf("cut = %v, kept %d bytes", w.outputCut, len(w.output))
	}
}

func TestBatchesStayUnderTheMessageLimit(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	// 300 lines of 60 KiB: 18 MB, far over one message, and over LogMaxBytes too.
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "python3", "-c", "import sys\nfor i in range(300): print('%03d' % i + 'a' * 61437)")})
	wantSuccess(t, h.result(t, d))
	lines := h.lines(t, d)
	if len(lines) < 100 {
		t.Fatalf("only %d lines shipped", len(lines))
	}
	for i, l := range lines[:100] {
		if len(l.Line) != 61440 || l.Line[:3] != fmt.Sprintf("%03d", i) {
			t.Fatalf("line %d: %.10q… (%d bytes)", i, l.Line, len(l.Line))
		}
	}
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	for _, lb := range h.logs.items {
		size := 0
		for _, l := range lb.Lines {
			size += len(l.Line)
		}
		if size > logBatchMaxBytes+LogLineMaxBytesDefault {
			t.Errorf("a batch carries %d bytes", size)
		}
	}
}

// freePort returns a TCP port that was free a moment ago, for a server that must come back on the
// same address.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// startServerAt starts a JetStream server on a fixed port and store, stopped when the test ends.
func startServerAt(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatalf("starting nats server on port %d: %v", port, err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// storedLines reads an attempt's log batches from ORK_LOGS in stream order and returns their lines.
func storedLines(t *testing.T, h *harness, d event.Dispatch) []event.LogLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	subject := (&event.LogBatch{RunID: d.RunID, Task: d.Task.Name}).Subject()
	st, err := h.bus.JS.Stream(ctx, event.StreamLogs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Subjects[subject])
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []event.LogLine
	for got := 0; got < n; {
		batch, err := cons.Fetch(n-got, jetstream.FetchMaxWait(waitDeadline))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			lb, err := event.DecodeLogBatch(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if lb.Attempt == d.Attempt {
				lines = append(lines, lb.Lines...)
			}
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return lines
}

// startPlainServerAt starts a NATS server without JetStream on a fixed port: it accepts
// connections and drops every JetStream publish ("no responders"), as a restarting server does with
// the publishes in flight when it went down.
func startPlainServerAt(t *testing.T, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(waitDeadline) {
		t.Fatal("plain nats server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func TestLogsSurviveANATSRestart(t *testing.T) {
	t.Parallel()
	dir, port := t.TempDir(), freePort(t)
	srv := startServerAt(t, dir, port)
	h := setupAt(t, srv.ClientURL())
	cfg := testConfig(t)
	cfg.Types = []string{workflow.ExecutorProcess}
	// Small batches, so that the outage leaves many of them to retry and the writers wait for room.
	cfg.LogBatchLines = 8
	cfg.LogFlushInterval = 10 * time.Millisecond
	log, retrying := signalLogger(t, "shipping log lines; trying again until the logs stream takes them")
	h.startLogged(t, cfg, log)

	// 50 lines, then, once JetStream is gone, 300 more (over the 128 unshipped lines that make the
	// task wait), then the task ends, JetStream perhaps still gone.
	gone := filepath.Join(t.TempDir(), "gone")
	const before, total = 50, 350
	script := `i=1; while [ $i -le 50 ]; do echo "line $i"; i=$((i+1)); done
while [ ! -e "$1" ]; do sleep 0.02; done
while [ $i -le 350 ]; do echo "line $i"; i=$((i+1)); done`
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", script, "sh", gone)})
	h.logs.wait(t, "the lines printed before the outage", func(lbs []event.LogBatch) bool {
		return slices.ContainsFunc(lbs, func(lb event.LogBatch) bool {
			return lb.RunID == d.RunID && slices.ContainsFunc(lb.Lines, func(l event.LogLine) bool { return l.Seq == before })
		})
	})
	// The server goes down; what comes back first on its address has no JetStream, so the publishes
	// buffered by the client and the first retries are lost; then the server comes back on its store.
	srv.Shutdown()
	srv.WaitForShutdown()
	plain := startPlainServerAt(t, port)
	writeFile(t, gone, "", 0o644)
	waitClosed(t, retrying, "a log batch to be refused while JetStream is gone")
	plain.Shutdown()
	plain.WaitForShutdown()
	startServerAt(t, dir, port)

	// Every line is on the stream before the terminal event is published.
	wantSuccess(t, h.result(t, d))
	seen := map[int64]bool{}
	for _, l := range h.lines(t, d) {
		seen[l.Seq] = true
	}
	if len(seen) != total {
		t.Errorf("%d distinct lines were published before the terminal event, want %d", len(seen), total)
	}
	// And the stream holds each of them once, in order.
	lines := storedLines(t, h, d)
	if len(lines) != total {
		t.Errorf("the logs stream holds %d lines, want %d", len(lines), total)
	}
	for i, l := range lines {
		if l.Seq != int64(i+1) || l.Line != "line "+strconv.Itoa(i+1) {
			t.Fatalf("stored line %d is %d %q, want %d %q", i, l.Seq, l.Line, i+1, "line "+strconv.Itoa(i+1))
		}
	}
}

func TestHardStopReleasesALogSinkThatCannotShip(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	h := setupAt(t, srv.ClientURL())
	srv.Shutdown()
	srv.WaitForShutdown()
	cfg := testConfig(t).WithDefaults()
	cfg.LogBatchLines = 1 // 16 unshipped lines make writers wait
	log, retrying := signalLogger(t, "shipping log lines; trying again until the logs stream takes them")
	stop, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	sink := newLogSink(stop, h.bus, cfg, log, &event.Dispatch{RunID: "r", Task: processTask("t"), Attempt: 1})
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := range 100 {
			sink.add(event.Stdout, "line "+strconv.Itoa(i))
		}
	}()
	waitClosed(t, retrying, "a batch to fail")
	select {
	case <-added:
		t.Fatal("100 lines were taken while none could be shipped: unshipped lines are not bounded")
	default:
	}
	// The hard stop releases the writer and close gives up instead of waiting for the server.
	hardStop()
	waitClosed(t, added, "the writer to be released by the hard stop")
	closed := make(chan struct{})
	go func() { sink.close(); close(closed) }()
	waitClosed(t, closed, "close to return after the hard stop")
	if sink.abandoned != 100 {
		t.Errorf("%d lines counted lost, want 100", sink.abandoned)
	}
}
