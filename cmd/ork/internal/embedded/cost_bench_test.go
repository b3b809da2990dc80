package embedded_test

import (
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ork-go/ork/cmd/ork/internal/bench"
	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/event"
)

// The per-task cost of the engine, as go test -bench functions: what one no-op task costs the whole
// embedded stack (NATS server, recorder, scheduler, executor, SQLite) in messages, JetStream API
// calls, stored messages per stream, bytes, allocations and CPU. docs/benchmarks.md ("Per-task
// budget") states the design's minimum beside these figures. Each operation is one run of
// costTasks tasks; the metrics are divided by the tasks, so they do not depend on b.N.
//
//	cd cmd/ork && go test -run '^$' -bench BenchmarkTaskCost -benchtime 5x ./internal/embedded/
const costTasks = 1000

func BenchmarkTaskCostWide(b *testing.B) {
	benchTaskCost(b, bench.Scenario{Shape: bench.ShapeWide, Tasks: costTasks})
}

func BenchmarkTaskCostChain(b *testing.B) {
	benchTaskCost(b, bench.Scenario{Shape: bench.ShapeChain, Depth: costTasks})
}

// costSample is what the process and the server counted at one moment.
type costSample struct {
	inMsgs, outMsgs, inBytes, apiCalls int64
	stored                             map[string]int64 // last sequence per stream group
	mallocs, allocBytes                uint64
	cpu                                time.Duration
}

func sampleCost(b *testing.B, s *embedded.Stack) costSample {
	b.Helper()
	v, err := s.Server.Varz(nil)
	if err != nil {
		b.Fatal(err)
	}
	js, err := s.Server.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		b.Fatal(err)
	}
	c := costSample{inMsgs: v.InMsgs, outMsgs: v.OutMsgs, inBytes: v.InBytes, apiCalls: int64(js.API.Total), stored: map[string]int64{}} //nolint:gosec // counters fit
	for _, acc := range js.AccountDetails {
		for _, st := range acc.Streams {
			c.stored[streamGroup(st.Name)] += int64(st.State.LastSeq) //nolint:gosec // sequences fit
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.mallocs, c.allocBytes = ms.Mallocs, ms.TotalAlloc
	c.cpu = processCPU(b)
	return c
}

// processCPU is the CPU time this process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamGroup names a stream in the report: the KV buckets together, the others by name.
func streamGroup(name string) string {
	if strings.HasPrefix(name, "KV_") {
		return "kv"
	}
	return strings.ToLower(strings.TrimPrefix(name, "ORK_"))
}

func benchTaskCost(b *testing.B, sc bench.Scenario) {
	s := start(b, "", 0)
	plan, err := bench.BuildPlan(sc.WithDefaults(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	runPlan(b, s, plan, "") // warm up: streams, consumers, prepared statements
	before := sampleCost(b, s)
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		p := *plan
		run := runPlan(b, s, &p, "")
		if run.Status != event.RunSuccess {
			b.Fatalf("run %s ended %s", run.ID, run.Status)
		}
	}
	b.StopTimer()
	elapsed := time.Since(start)
	after := sampleCost(b, s)
	report(b, before, after, b.N*len(plan.Tasks))
	b.ReportMetric(float64(b.N*len(plan.Tasks))/elapsed.Seconds(), "tasks/s")
}

func report(b *testing.B, before, after costSample, tasks int) {
	per := func(d int64) float64 { return float64(d) / float64(tasks) }
	b.ReportMetric(per(after.inMsgs-before.inMsgs), "msgs-in/task")
	b.ReportMetric(per(after.outMsgs-before.outMsgs), "msgs-out/task")
	b.ReportMetric(per(after.inBytes-before.inBytes), "bytes-in/task")
	b.ReportMetric(per(after.apiCalls-before.apiCalls), "js-api/task")
	for group, seq := range after.stored {
		b.ReportMetric(per(seq-before.stored[group]), "stored-"+group+"/task")
	}
	b.ReportMetric(per(int64(after.mallocs-before.mallocs)), "allocs/task")        //nolint:gosec // deltas fit
	b.ReportMetric(per(int64(after.allocBytes-before.allocBytes)), "B-alloc/task") //nolint:gosec // deltas fit
	b.ReportMetric(float64(after.cpu-before.cpu)/float64(time.Millisecond)/float64(tasks), "cpu-ms/task")
	b.ReportMetric(0, "ns/op") // one op is a whole run: the per-task figures above are the result
}
