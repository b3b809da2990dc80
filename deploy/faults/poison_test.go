package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/pkg/event"
)

// publishRaw publishes bytes on a subject of ORK_EVENTS and returns their stream sequence.
func (e *env) publishRaw(subject string, data []byte) (uint64, error) {
	ack, err := e.bus.JS.PublishMsg(e.ctx, &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}})
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// publishEvent publishes an event as JSON, as is, and returns its stream sequence.
func (e *env) publishEvent(ev event.Event) uint64 {
	e.t.Helper()
	data, err := json.Marshal(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	seq, err := e.publishRaw(ev.Subject(), data)
	if err != nil {
		e.t.Fatalf("publishing %s: %v", ev.Type, err)
	}
	return seq
}

// deadLetters returns the reasons of ORK_EVENTS' dead letters by stream sequence.
func (e *env) deadLetters() map[uint64]string {
	e.t.Helper()
	conn, err := pgx.Connect(e.ctx, e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(e.ctx, `SELECT seq, reason FROM dead_letters WHERE stream = $1`, event.StreamEvents)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint64]string{}
	for rows.Next() {
		var seq int64
		var reason string
		if err := rows.Scan(&seq, &reason); err != nil {
			e.t.Fatal(err)
		}
		out[uint64(seq)] = reason
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestPoisonEvents: undecodable bytes, a v=99 envelope, events for unknown runs and tasks and
// oversized payloads published on ORK_EVENTS end in dead_letters with their stream sequence and a
// reason; a payload over the server's limit is refused to its publisher; a good run submitted
// behind them all finishes.
func TestPoisonEvents(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 1, concurrency: 2})
	good := e.workflow("behind-poison", []taskSpec{{name: "a", lines: 1}, {name: "b", deps: []string{"a"}, lines: 1}})

	// A real run, so that an event can name one of its tasks that does not exist.
	first := e.submit(good)
	e.check(faults.Params{WantStatus: map[string]string{first: event.RunSuccess}, EveryTaskWritesLedger: true})

	unknownRun := event.NewID()
	poison := map[string]uint64{}
	var err error
	if poison["undecodable"], err = e.publishRaw(event.SubjectEvent("task.started", unknownRun), []byte("\x00\xffnot json{")); err != nil {
		t.Fatal(err)
	}
	v99 := event.New(event.TypeTaskStarted, first, "a", 1)
	v99.V = 99
	poison["v=99"] = e.publishEvent(v99)
	poison["unknown run"] = e.publishEvent(event.New(event.TypeTaskSucceeded, unknownRun, "a", 1))
	poison["unknown task"] = e.publishEvent(event.New(event.TypeTaskSucceeded, first, "no-such-task", 1))
	huge := event.New(event.TypeTaskSucceeded, unknownRun, "a", 1)
	huge.Output = json.RawMessage(`"` + strings.Repeat("x", 6<<20) + `"`)
	poison["oversized event"] = e.publishEvent(huge)
	if poison["oversized garbage"], err = e.publishRaw(event.SubjectEvent("task.failed", unknownRun), bytes.Repeat([]byte{0xfe}, 6<<20)); err != nil {
		t.Fatal(err)
	}
	// Over max_payload (8 MB): the publisher gets an explicit error, nothing is stored.
	if _, err := e.publishRaw(event.SubjectEvent("task.failed", unknownRun), make([]byte, 9<<20)); err == nil {
		t.Error("publishing 9 MB on ORK_EVENTS succeeded, want the server's max payload error")
	} else {
		t.Logf("9 MB publish refused: %v", err)
	}

	second := e.submit(good)
	e.waitUntil("every poison message in dead_letters", func() bool {
		dead := e.deadLetters()
		for _, seq := range poison {
			if _, ok := dead[seq]; !ok {
				return false
			}
		}
		return true
	})
	dead := e.deadLetters()
	for what, seq := range poison {
		if dead[seq] == "" {
			t.Errorf("%s (seq %d): dead letter without a reason", what, seq)
		}
		t.Logf("%s: seq %d dead-lettered: %.120s", what, seq, dead[seq])
	}
	e.check(faults.Params{
		WantStatus:            map[string]string{first: event.RunSuccess, second: event.RunSuccess},
		EveryTaskWritesLedger: true, AllowDeadLetters: true,
	})
}

// TestBadWorkflowFiles: `ork validate` rejects a file over the 1 MiB cap, an alias bomb and a
// 100,000-task file quickly and in bounded memory.
func TestBadWorkflowFiles(t *testing.T) {
	t.Parallel()
	bins := binaries(t)
	dir := t.TempDir()

	// Nine levels of nine aliases inside consts, which the validator must look at: 9^10 strings.
	var bomb strings.Builder
	bomb.WriteString("name: bomb\ntasks:\n  a:\n    executor: process\n    command: [\"true\"]\n    inputs:\n")
	bomb.WriteString(`      l0: {const: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]}` + "\n")
	for i := 1; i <= 9; i++ {
		p := fmt.Sprintf("*l%d", i-1)
		fmt.Fprintf(&bomb, "      l%d: {const: &l%d [%s]}\n", i, i, strings.Join(slices.Repeat([]string{p}, 9), ","))
	}

	var big strings.Builder
	big.WriteString("name: big\ndescription: '" + strings.Repeat("x", 1<<20) + "'\ntasks:\n  a:\n    executor: process\n    command: [\"true\"]\n")

	var many strings.Builder
	many.WriteString("name: many\ntasks:\n")
	for i := range 100_000 {
		fmt.Fprintf(&many, "  t%d: {executor: process, command: [\"true\"]}\n", i)
	}

	for _, c := range []struct{ name, text string }{
		{"over-cap.yaml", big.String()},
		{"alias-bomb.yaml", bomb.String()},
		{"100k-tasks.yaml", many.String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, c.name)
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			m := measure(t, bins.CLI, "validate", path)
			if m.Code == 0 {
				t.Fatalf("ork validate %s exited 0, want a rejection\n%s", c.name, m.Out)
			}
			wall, rss := time.Duration(m.Wall*float64(time.Second)), m.MaxRSSKB<<10
			t.Logf("%s (%d bytes): rejected in %s, peak RSS %.1f MB: %.200s", c.name, len(c.text),
				wall.Round(time.Millisecond), float64(rss)/(1<<20), strings.TrimSpace(m.Out))
			if wall > 5*time.Second {
				t.Errorf("ork validate took %s, want well under 5 s", wall)
			}
			if rss > 300<<20 {
				t.Errorf("ork validate peaked at %d MB, want under 300 MB", rss>>20)
			}
		})
	}
}

// measured is what measurePy reports about one command.
type measured struct {
	Code     int     `json:"code"`
	Wall     float64 `json:"wall"`
	MaxRSSKB int64   `json:"maxrss_kb"`
	Out      string  `json:"out"`
}

// measurePy runs a command and reports its exit code, wall time, peak RSS and output. The peak RSS
// is read by a small parent: a child exec'ed straight from the (large) test process inherits that
// process's high-water mark in its rusage.
const measurePy = `import json, resource, subprocess, sys, time
t = time.monotonic()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
w = time.monotonic() - t
print(json.dumps({"code": p.returncode, "wall": w, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "out": p.stdout.decode(errors="replace")[:2000]}))
`

// measure runs a command under measurePy.
func measure(t *testing.T, args ...string) measured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python3(), append([]string{"-c", measurePy}, args...)...).Output()
	if err != nil {
		t.Fatalf("measuring %v: %v", args, err)
	}
	var m measured
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("measuring %v: %v\n%s", args, err, out)
	}
	return m
}

// TestOutputBounds: a task printing 1 GB to stdout and one printing 10 MB lines leave the
// executor's memory bounded and their logs end with a truncation marker; arguments that a shell
// would interpret arrive as literal argv entries.
func TestOutputBounds(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 1, concurrency: 3})
	literal := []string{"; rm -rf / #", "$(id)", "`id`", "--flag", "a b", "*"}
	plan := e.workflow("output-bounds", []taskSpec{
		{name: "flood", command: []string{"sh", "-c", "yes 0123456789012345678901234567890123456789 | head -c 1000000000"}},
		{name: "longlines", command: []string{python3(), "-c", "import sys\nfor i in range(5):\n    sys.stdout.write('x' * 10000000 + '\\n')\n    sys.stdout.flush()\n"}},
		{name: "argv", argv: literal},
	})
	runID := e.submit(plan)
	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}})
	hwm, err := e.s.Executors[0].PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("executor peak RSS after 1 GB of output and 10 MB lines: %.1f MB", float64(hwm)/(1<<20))
	if hwm > 200<<20 {
		t.Errorf("executor peak RSS %d MB, want under 200 MB", hwm>>20)
	}

	conn, err := pgx.Connect(e.ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for task, marker := range map[string]string{"flood": "[ork: log truncated", "longlines": "[ork: line cut at"} {
		var n, bytesShipped int64
		var found bool
		if err := conn.QueryRow(e.ctx, `SELECT count(*), coalesce(sum(length(line)), 0), bool_or(position($3 in line) > 0)
			FROM task_logs WHERE run_id = $1 AND task = $2`, runID, task, marker).Scan(&n, &bytesShipped, &found); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d log lines, %d bytes stored, marker %q present: %v", task, n, bytesShipped, marker, found)
		if !found {
			t.Errorf("%s: no log line with the marker %q", task, marker)
		}
	}
	var last string
	if err := conn.QueryRow(e.ctx, `SELECT line FROM task_logs WHERE run_id = $1 AND task = 'flood' ORDER BY seq DESC LIMIT 1`,
		runID).Scan(&last); err != nil {
		t.Fatal(err)
	}
	t.Logf("flood's last log line: %.100s", last)

	var output []byte
	if err := conn.QueryRow(e.ctx, `SELECT output FROM tasks WHERE run_id = $1 AND name = 'argv'`, runID).Scan(&output); err != nil {
		t.Fatal(err)
	}
	var got struct{ Argv []string }
	if err := json.Unmarshal(output, &got); err != nil {
		t.Fatalf("argv output %s: %v", output, err)
	}
	if !slices.Equal(got.Argv, literal) {
		t.Errorf("the task received argv %q, want %q literally", got.Argv, literal)
	}
}
