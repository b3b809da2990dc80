package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/workflow"
	"github.com/ork-go/ork/services/api"
)

// The HTTP API's budgets as go test -bench functions (docs/benchmarks.md, "HTTP API"): trigger and
// list-runs latency with 100,000 runs in the database (SQLite and PostgreSQL), the delay from
// JetStream's ack of an event to its arrival on an open event stream, and 1,000 event streams at
// once on one server. The load generator and the 1,000 clients run in a second process (this test
// binary started again as TestAPILoadGenerator), so the server's latency and memory are its own.
// One operation is one request (trigger, list) or one event (the streams); the percentiles are
// over the operations of the last round, so give a count:
//
//	cd cmd/ork && TEST_DATABASE_URL='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' \
//	  go test -run '^$' -bench 'BenchmarkAPI(SQLite|Postgres|EventLatency)$' -benchtime 5000x ./internal/serve/
//	cd cmd/ork && go test -run '^$' -bench 'BenchmarkAPIEventClients$' -benchtime 100x ./internal/serve/
//
// ORK_BENCH_LOADGEN=hey sends the trigger and list requests with hey (apt-get install hey) instead.

const (
	benchRuns      = 100_000 // runs in the database before the trigger and list benchmarks
	benchFillBatch = 5_000   // run.submitted events per ApplyBatch while filling
	benchWorkflow  = "bench_noop"
	benchTask      = "only"
	benchFilledBy  = "bench-fill"
	benchClients   = 1_000
	// loadgenEnv carries the load generator's job to the second process.
	loadgenEnv = "ORK_BENCH_LOADGEN_JOB"
	// loadgenToolEnv picks the load generator: empty for this binary, "hey" for hey.
	loadgenToolEnv = "ORK_BENCH_LOADGEN"
	// loadgenLimit bounds a load generator's life, whatever its parent does.
	loadgenLimit = 5 * time.Minute
)

// benchNoopYAML is the benchmarks' workflow: one noop task, so a triggered run costs the engine
// the least a run can (a submission, one dispatch, two executor events, the run's end).
var benchNoopYAML = []byte("name: " + benchWorkflow + "\ndescription: the API benchmarks' workflow\ntasks:\n  " +
	benchTask + ":\n    executor: noop\n")

// BenchmarkAPISQLite measures trigger and list-runs with 100,000 runs in SQLite.
func BenchmarkAPISQLite(b *testing.B) {
	benchAPI(b, sqliteURL)
}

// BenchmarkAPIPostgres is BenchmarkAPISQLite on PostgreSQL (TEST_DATABASE_URL).
func BenchmarkAPIPostgres(b *testing.B) {
	url := pgtest.SchemaURL(b)
	benchAPI(b, func(string) string { return url })
}

// benchAPI fills the database once, then runs the request benchmarks against it: closed loops of
// 1 and of 8 concurrent clients.
func benchAPI(b *testing.B, dbURL func(dir string) string) {
	s := startBench(b, dbURL)
	s.fill(b, benchRuns)
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("trigger/c%d", conc), func(b *testing.B) {
			res := s.load(b, "POST", "/api/v1/workflows/"+benchWorkflow+"/runs", conc)
			s.triggered += res.OK
			s.awaitTriggered(b) // outside the measure: the next benchmark starts on a quiet engine
		})
	}
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("list-runs/c%d", conc), func(b *testing.B) {
			s.checkFirstPage(b)
			s.load(b, "GET", "/api/v1/runs?page_size=50", conc)
		})
	}
}

// BenchmarkAPIEventLatency measures, for one event at a time, the delay from JetStream's ack of its
// publish to its arrival on an open GET /api/v1/runs/{id}/events (a client in this process, over
// loopback TCP). The events are task.started of a pending run, each of a new attempt.
func BenchmarkAPIEventLatency(b *testing.B) {
	s := startBench(b, sqliteURL)
	runID := s.fill(b, 1)
	req, err := http.NewRequestWithContext(b.Context(), "GET", s.base+"/api/v1/runs/"+runID+"/events", nil)
	if err != nil {
		b.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("event stream: status %d", res.StatusCode)
	}
	arrivals := make(chan arrival, 1024)
	go func() { _ = readArrivals(res.Body, func(a arrival) { arrivals <- a }) }()

	fromAck := make([]time.Duration, 0, b.N)
	fromPublish := make([]time.Duration, 0, b.N)
	early := 0
	b.ResetTimer()
	for i := range b.N {
		msg := taskEvent(b, runID, i+1)
		t0 := time.Now()
		ack, err := s.Stack.Bus.PublishUntilStoredAck(b.Context(), msg)
		if err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		a := awaitArrival(b, arrivals, ack.Sequence)
		d := a.at.Sub(acked)
		if d < 0 { // on the stream before the publisher had the ack
			early++
			d = 0
		}
		fromAck = append(fromAck, d)
		fromPublish = append(fromPublish, a.at.Sub(t0))
	}
	b.StopTimer()
	ack, pub := summarize(fromAck), summarize(fromPublish)
	reportLatency(b, "", ack)
	b.ReportMetric(ms(pub.P50), "publish-p50-ms")
	b.ReportMetric(ms(pub.P99), "publish-p99-ms")
	b.ReportMetric(float64(early)/float64(b.N)*100, "%before-ack")
}

// BenchmarkAPIEventClients opens 1,000 GET /api/v1/events streams at once from a second process,
// measures the server's memory without and with them, then publishes one event at a time and
// measures until the last of the 1,000 clients has it (from the publish ack; wall clocks of the
// two processes, one machine).
func BenchmarkAPIEventClients(b *testing.B) {
	s := startBench(b, sqliteURL)
	runID := s.fill(b, 1)
	raiseConsumerLimit(b, s, benchClients)
	idle := sampleMemory()

	cl := startFanout(b, loadJob{Mode: "fanout", URL: s.base + "/api/v1/events", Clients: benchClients})
	defer cl.stop(b)
	opened := time.Now()
	cl.await(b, "ready")
	// Every stream replays the stream from its start, so a first event reaches each once its
	// consumer exists, whenever that was: after it, all 1,000 are live.
	attempt := 1
	warm, err := s.Stack.Bus.PublishUntilStoredAck(b.Context(), taskEvent(b, runID, attempt))
	if err != nil {
		b.Fatal(err)
	}
	cl.awaitSeq(b, warm.Sequence)
	openTime := time.Since(opened)
	open := sampleMemory()
	writeHeapProfile(b)

	last := make([]time.Duration, 0, b.N)
	first := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		attempt++
		msg := taskEvent(b, runID, attempt)
		ack, err := s.Stack.Bus.PublishUntilStoredAck(b.Context(), msg)
		if err != nil {
			b.Fatal(err)
		}
		acked := time.Now().UnixNano()
		got := cl.awaitSeq(b, ack.Sequence)
		last = append(last, time.Duration(max(got.last-acked, 0)))
		first = append(first, time.Duration(max(got.first-acked, 0)))
	}
	b.StopTimer()
	after := sampleMemory()

	reportLatency(b, "last-", summarize(last))
	b.ReportMetric(ms(summarize(first).P50), "first-p50-ms")
	b.ReportMetric(openTime.Seconds(), "open-s")
	b.ReportMetric(mb(idle.rss), "rss-MB-idle")
	b.ReportMetric(mb(open.rss), "rss-MB-open")
	b.ReportMetric(mb(after.rss), "rss-MB-after")
	b.ReportMetric(mb(idle.heap), "heap-MB-idle")
	b.ReportMetric(mb(open.heap), "heap-MB-open")
	b.ReportMetric(float64(open.rss-idle.rss)/1024/benchClients, "rss-KB/client")
	b.ReportMetric(float64(open.heap-idle.heap)/1024/benchClients, "heap-KB/client")
	b.ReportMetric(float64(open.goroutines-idle.goroutines)/benchClients, "goroutines/client")
}

// raiseConsumerLimit lets ORK_EVENTS hold clients consumers beside the engine's own. Each event
// stream is a consumer of it, and nats-server (2.15) limits a stream that sets no MaxConsumers to
// 1,000: without this the last few of 1,000 streams are refused ("maximum consumers limit
// reached"), which docs/benchmarks.md reports as a miss of its own.
func raiseConsumerLimit(b *testing.B, s *benchServer, clients int) {
	b.Helper()
	ctx := b.Context()
	st, err := s.Stack.Bus.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxConsumers = info.State.Consumers + clients + 10
	if _, err := s.Stack.Bus.JS.UpdateStream(ctx, cfg); err != nil {
		b.Fatalf("raising the consumer limit of %s: %v", event.StreamEvents, err)
	}
	b.Logf("%s: %d consumers of the engine; MaxConsumers raised from %d to %d for this benchmark",
		event.StreamEvents, info.State.Consumers, info.Config.MaxConsumers, cfg.MaxConsumers)
}

// heapProfileEnv names a file to write the heap profile to while the 1,000 streams are open.
const heapProfileEnv = "ORK_BENCH_HEAPPROFILE"

func writeHeapProfile(b *testing.B) {
	b.Helper()
	path := os.Getenv(heapProfileEnv)
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

func sqliteURL(dir string) string { return "sqlite://" + filepath.Join(dir, "ork.db") }

// benchServer is a running `ork serve` for a benchmark, with the benchmark workflow registered.
type benchServer struct {
	*serve.Server
	base      string
	plan      *workflow.Plan
	triggered int // runs the benchmarks triggered, all to be awaited
}

func startBench(b *testing.B, dbURL func(dir string) string) *benchServer {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := b.TempDir()
	srv, err := serve.Start(ctx, serve.Config{
		API:   api.Config{Addr: "127.0.0.1:0", WorkflowsRoot: dir, RatePerSecond: -1},
		Stack: embedded.Config{DataDir: dir, DBURL: dbURL(dir)},
	}, zaptest.NewLogger(b, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(runCtx) }()
	b.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	s := &benchServer{Server: srv, base: srv.URL()}
	req, err := http.NewRequestWithContext(ctx, "PUT", s.base+"/api/v1/workflows/"+benchWorkflow, bytes.NewReader(benchNoopYAML))
	if err != nil {
		b.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("registering %s: %d %s", benchWorkflow, res.StatusCode, body)
	}
	reg, err := client.New(srv.Stack.Bus).Workflow(ctx, benchWorkflow)
	if err != nil {
		b.Fatal(err)
	}
	s.plan = reg.Plan
	return s
}

// fill writes n pending runs of the benchmark workflow straight into the store, in batches of
// benchFillBatch run.submitted events, created over the last n milliseconds, and returns the id of
// the newest. The bus never sees them, so the engine has nothing to do for them.
func (s *benchServer) fill(b *testing.B, n int) string {
	b.Helper()
	ctx := b.Context()
	start := time.Now()
	created := start.UTC().Add(-time.Duration(n) * time.Millisecond)
	var id string
	for done := 0; done < n; {
		evs := make([]event.Event, 0, min(benchFillBatch, n-done))
		for ; done < n && len(evs) < cap(evs); done++ {
			id = event.NewID()
			e := event.New(event.TypeRunSubmitted, id, "", 0)
			e.Time, e.Workflow, e.Plan, e.TriggeredBy = created.Add(time.Duration(done)*time.Millisecond), s.plan.Name, s.plan, benchFilledBy
			evs = append(evs, e)
		}
		res, err := s.Stack.Store.ApplyBatch(ctx, store.ApplyBatchParams{Events: evs})
		if err != nil {
			b.Fatalf("filling the database: %v", err)
		}
		if len(res.Orphans) != 0 {
			b.Fatalf("filling the database: %d orphans", len(res.Orphans))
		}
	}
	if n > 1 {
		b.Logf("%d runs written in %s", n, time.Since(start).Round(time.Millisecond))
	}
	return id
}

// load sends b.N requests from the load generator, conc at a time, and reports their latency.
func (s *benchServer) load(b *testing.B, method, path string, conc int) loadResult {
	b.Helper()
	job := loadJob{Mode: "http", Method: method, URL: s.base + path, N: b.N, Conc: min(conc, b.N)}
	b.ResetTimer()
	var res loadResult
	if os.Getenv(loadgenToolEnv) == "hey" {
		res = runHey(b, job)
	} else {
		res = runLoadgen(b, job)
	}
	b.StopTimer()
	if res.Failures > 0 {
		b.Fatalf("%d of %d requests failed; the first: %s", res.Failures, b.N, res.FirstFailure)
	}
	reportLatency(b, "", res.Latency)
	if res.Elapsed > 0 {
		b.ReportMetric(float64(res.OK)/res.Elapsed.Seconds(), "req/s")
	}
	return res
}

// checkFirstPage checks that the page the list benchmark asks for is a full one with a next.
func (s *benchServer) checkFirstPage(b *testing.B) {
	b.Helper()
	req, err := http.NewRequestWithContext(b.Context(), "GET", s.base+"/api/v1/runs?page_size=50", nil)
	if err != nil {
		b.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var page runList
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || len(page.Runs) != 50 || page.Next == "" {
		b.Fatalf("first page: status %d, %d runs, next %q, %v", res.StatusCode, len(page.Runs), page.Next, err)
	}
}

// awaitTriggered waits until every run the benchmarks triggered has succeeded in the database.
func (s *benchServer) awaitTriggered(b *testing.B) {
	b.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(3 * time.Minute)
	start := time.Now()
	for {
		runs, err := s.Stack.Store.RunList(b.Context(), store.RunListParams{TriggeredBy: "api:local",
			Status: event.RunSuccess, Limit: s.triggered + 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(runs) >= s.triggered {
			b.Logf("all %d triggered runs succeeded %s after the last trigger", s.triggered, time.Since(start).Round(10*time.Millisecond))
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			b.Fatalf("%d of %d triggered runs succeeded after 3 minutes", len(runs), s.triggered)
		}
	}
}

// taskEvent is a task.started of the benchmark task of runID: a new attempt each time, since the
// stream drops a repeat of the same attempt's event as a duplicate.
func taskEvent(b *testing.B, runID string, attempt int) bus.Msg {
	b.Helper()
	e := event.New(event.TypeTaskStarted, runID, benchTask, attempt)
	e.Instance = "bench"
	msg, err := bus.EventMsg(&e)
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// latencies summarizes a sample of latencies.
type latencies struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func summarize(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[max(int(math.Ceil(p*float64(len(s))))-1, 0)] }
	return latencies{N: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[len(s)-1]}
}

func reportLatency(b *testing.B, prefix string, l latencies) {
	b.ReportMetric(ms(l.P50), prefix+"p50-ms")
	b.ReportMetric(ms(l.P90), prefix+"p90-ms")
	b.ReportMetric(ms(l.P99), prefix+"p99-ms")
	b.ReportMetric(ms(l.Max), prefix+"max-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// memory is what this process holds at one moment, after a collection that returned what it
// could to the system.
type memory struct {
	rss, heap  uint64
	goroutines int
}

func sampleMemory() memory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine()}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.rss = kb << 10
			}
		}
	}
	return m
}

// arrival is one event read from a stream: its id (the ORK_EVENTS sequence) and when it was read.
type arrival struct {
	seq uint64
	at  time.Time
}

// readArrivals reads a Server-Sent Events stream, calling fn for each event that has an id, until
// the stream ends.
func readArrivals(r io.Reader, fn func(arrival)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var seq uint64
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull): // the middle of a long data line
			continue
		case err != nil:
			return err
		case len(line) == 1: // the blank line that ends an event
			if seq != 0 {
				fn(arrival{seq: seq, at: time.Now()})
				seq = 0
			}
		case bytes.HasPrefix(line, []byte("id: ")):
			seq, _ = strconv.ParseUint(string(bytes.TrimSpace(line[4:])), 10, 64)
		}
	}
}

func awaitArrival(b *testing.B, arrivals <-chan arrival, seq uint64) arrival {
	b.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case a := <-arrivals:
			if a.seq == seq {
				return a
			}
		case <-timeout:
			b.Fatalf("event %d not on the stream after 30 s", seq)
		}
	}
}

// loadJob is the second process's work.
type loadJob struct {
	// Mode is "http" (N requests, Conc at a time, each timed) or "fanout" (Clients event streams
	// open at once, telling when each event has reached all of them).
	Mode    string `json:"mode"`
	Method  string `json:"method,omitempty"`
	URL     string `json:"url"`
	N       int    `json:"n,omitempty"`
	Conc    int    `json:"conc,omitempty"`
	Clients int    `json:"clients,omitempty"`
}

// loadResult is what an "http" job measured.
type loadResult struct {
	Latency      latencies
	OK, Failures int
	FirstFailure string
	Elapsed      time.Duration
}

// loadgenPrefix marks the load generator's lines on its standard output (the test framework
// writes there too).
const loadgenPrefix = "loadgen: "

// loadgenCommand starts this test binary again as the load generator for job.
func loadgenCommand(b *testing.B, job loadJob) *exec.Cmd {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := json.Marshal(job)
	cmd := exec.Command(exe, "-test.run=^TestAPILoadGenerator$", "-test.count=1") //nolint:gosec // this test binary
	cmd.Env = append(os.Environ(), loadgenEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	return cmd
}

func runLoadgen(b *testing.B, job loadJob) loadResult {
	b.Helper()
	out, err := loadgenCommand(b, job).Output()
	if err != nil {
		b.Fatalf("load generator: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, loadgenPrefix); ok {
			var res loadResult
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				b.Fatalf("load generator said %q: %v", rest, err)
			}
			return res
		}
	}
	b.Fatalf("load generator printed no result:\n%s", out)
	return loadResult{}
}

var (
	heyTotal   = regexp.MustCompile(`Total:\s+([0-9.]+) secs`)
	heySlowest = regexp.MustCompile(`Slowest:\s+([0-9.]+) secs`)
	heyPct     = regexp.MustCompile(`\s(\d+)%+ in ([0-9.]+) secs`)
	heyStatus  = regexp.MustCompile(`\[(\d+)\]\s+(\d+) responses`)
)

// runHey runs an "http" job with hey, whose percentiles have 0.1 ms resolution.
func runHey(b *testing.B, job loadJob) loadResult {
	b.Helper()
	out, err := exec.Command("hey", "-n", strconv.Itoa(job.N), "-c", strconv.Itoa(job.Conc), "-m", job.Method, job.URL).CombinedOutput() //nolint:gosec // our own arguments
	if err != nil {
		b.Fatalf("hey: %v\n%s", err, out)
	}
	secs := func(s string) time.Duration {
		f, _ := strconv.ParseFloat(s, 64)
		return time.Duration(f * float64(time.Second))
	}
	var res loadResult
	if m := heyTotal.FindSubmatch(out); m != nil {
		res.Elapsed = secs(string(m[1]))
	}
	if m := heySlowest.FindSubmatch(out); m != nil {
		res.Latency.Max = secs(string(m[1]))
	}
	for _, m := range heyPct.FindAllSubmatch(out, -1) {
		switch string(m[1]) {
		case "50":
			res.Latency.P50 = secs(string(m[2]))
		case "90":
			res.Latency.P90 = secs(string(m[2]))
		case "99":
			res.Latency.P99 = secs(string(m[2]))
		}
	}
	for _, m := range heyStatus.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		if m[1][0] == '2' {
			res.OK += n
		} else {
			res.Failures += n
			res.FirstFailure = "status " + string(m[1])
		}
	}
	res.Latency.N = res.OK + res.Failures
	if res.Failures += job.N - res.Latency.N; res.Failures > 0 && res.FirstFailure == "" {
		res.FirstFailure = string(out)
	}
	return res
}

// fanout is a running "fanout" job: its lines arrive on lines.
type fanout struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// fanoutSeen is when an event reached the first and the last client (Unix nanoseconds).
type fanoutSeen struct{ first, last int64 }

func startFanout(b *testing.B, job loadJob) *fanout {
	b.Helper()
	cmd := loadgenCommand(b, job)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f := &fanout{cmd: cmd, stdin: stdin, lines: make(chan string, 64)}
	go func() {
		defer close(f.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), loadgenPrefix); ok {
				f.lines <- rest
			}
		}
	}()
	return f
}

// await waits for a line of the clients' process.
func (f *fanout) await(b *testing.B, want string) string {
	b.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-f.lines:
			if !ok {
				b.Fatalf("the clients' process ended before %q", want)
			}
			if strings.HasPrefix(line, "error ") {
				b.Fatalf("clients: %s", line)
			}
			if strings.HasPrefix(line, want) {
				return line
			}
		case <-timeout:
			b.Fatalf("no %q from the clients' process after 2 minutes", want)
		}
	}
}

// awaitSeq waits until the event of stream sequence seq has reached every client.
func (f *fanout) awaitSeq(b *testing.B, seq uint64) fanoutSeen {
	b.Helper()
	line := f.await(b, "seen "+strconv.FormatUint(seq, 10)+" ")
	var s fanoutSeen
	var got uint64
	if _, err := fmt.Sscanf(line, "seen %d %d %d", &got, &s.first, &s.last); err != nil {
		b.Fatalf("clients said %q: %v", line, err)
	}
	return s
}

// stop ends the clients' process: it stops when its standard input closes.
func (f *fanout) stop(b *testing.B) {
	_ = f.stdin.Close()
	if err := f.cmd.Wait(); err != nil {
		b.Errorf("the clients' process: %v", err)
	}
}

// TestAPILoadGenerator is not a test: it is the second process of the API benchmarks, which start
// this binary again with the job in ORK_BENCH_LOADGEN_JOB. Without it, it skips.
func TestAPILoadGenerator(t *testing.T) {
	t.Parallel()
	spec := os.Getenv(loadgenEnv)
	if spec == "" {
		t.Skip("the load generator of the API benchmarks (BenchmarkAPI*); they start it")
	}
	var job loadJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		t.Fatalf("%s: %v", loadgenEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadgenLimit)
	defer cancel()
	switch job.Mode {
	case "http":
		res := loadHTTP(ctx, job)
		out, _ := json.Marshal(res)
		fmt.Println(loadgenPrefix + string(out))
	case "fanout":
		// The parent closes standard input to stop the clients.
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
		if err := loadFanout(ctx, job); err != nil && ctx.Err() == nil {
			fmt.Println(loadgenPrefix + "error " + err.Error())
		}
	default:
		t.Fatalf("unknown mode %q", job.Mode)
	}
}

// loadHTTP sends job.N requests from job.Conc clients in closed loops (each sends its next
// request when the answer to the last one is read) and times each.
func loadHTTP(ctx context.Context, job loadJob) loadResult {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: job.Conc, DisableCompression: true}}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		res      loadResult
		all      = make([]time.Duration, 0, job.N)
		wg       sync.WaitGroup
		recordFn = func(lat []time.Duration, ok, failed int, first string) {
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			res.OK += ok
			res.Failures += failed
			if res.FirstFailure == "" {
				res.FirstFailure = first
			}
		}
	)
	start := time.Now()
	for range job.Conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				lat        []time.Duration
				ok, failed int
				first      string
			)
			for next.Add(1) <= int64(job.N) {
				req, err := http.NewRequestWithContext(ctx, job.Method, job.URL, nil)
				if err != nil {
					failed, first = failed+1, err.Error()
					continue
				}
				t0 := time.Now()
				r, err := hc.Do(req)
				if err != nil {
					failed, first = failed+1, err.Error()
					continue
				}
				body, err := io.ReadAll(r.Body)
				r.Body.Close()
				lat = append(lat, time.Since(t0))
				if err != nil || r.StatusCode/100 != 2 {
					failed++
					if first == "" {
						first = fmt.Sprintf("%d %s %v", r.StatusCode, body, err)
					}
					continue
				}
				ok++
			}
			recordFn(lat, ok, failed, first)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Latency = summarize(all)
	return res
}

// loadFanout opens job.Clients event streams at once, says "ready" once every one has its answer,
// then "seen <seq> <first> <last>" (Unix nanoseconds) when an event has reached all of them.
func loadFanout(ctx context.Context, job loadJob) error {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}
	arrivals := make(chan arrival, 16*job.Clients)
	errs := make(chan error, job.Clients)
	var ready sync.WaitGroup
	for range job.Clients {
		ready.Add(1)
		go func() {
			answered := false
			defer func() {
				if !answered {
					ready.Done()
				}
			}()
			req, err := http.NewRequestWithContext(ctx, "GET", job.URL, nil)
			if err != nil {
				errs <- err
				return
			}
			r, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer r.Body.Close()
			if r.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("event stream: status %d", r.StatusCode)
				return
			}
			answered = true
			ready.Done()
			err = readArrivals(r.Body, func(a arrival) { arrivals <- a })
			if ctx.Err() == nil {
				errs <- fmt.Errorf("an event stream ended: %w", err)
			}
		}()
	}
	ready.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Println(loadgenPrefix + "ready")
	type seen struct {
		n           int
		first, last time.Time
	}
	bySeq := map[uint64]*seen{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case a := <-arrivals:
			s := bySeq[a.seq]
			if s == nil {
				s = &seen{first: a.at}
				bySeq[a.seq] = s
			}
			s.n++
			if a.at.Before(s.first) {
				s.first = a.at
			}
			if a.at.After(s.last) {
				s.last = a.at
			}
			if s.n == job.Clients {
				fmt.Printf("%sseen %d %d %d\n", loadgenPrefix, a.seq, s.first.UnixNano(), s.last.UnixNano())
				delete(bySeq, a.seq)
			}
		}
	}
}
