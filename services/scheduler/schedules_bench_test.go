package scheduler

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// BenchmarkSchedules measures the schedules on a real scheduler and an in-process nats-server
// (run with -benchtime 1x: each case measures over a fixed window of wall time, not b.N):
//
//   - Lateness/1: one schedule firing every second, for 20 s: how late each run's submission is
//     stored in ORK_EVENTS after its nominal time (p50, p99, max).
//   - Lateness/10000: 10,000 schedules, each once a minute at its own second (about 167 fires a
//     second), for 30 s.
//   - Idle/10000: 10,000 registered schedules that do not fire in the window: the CPU the whole
//     process (scheduler and nats-server) uses per second of wall time over 10 s, in % of a core.
func BenchmarkSchedules(b *testing.B) {
	b.Run("Lateness/1", func(b *testing.B) {
		benchScheduleLateness(b, 1, func(int) string { return "* * * * * *" }, 20*time.Second)
	})
	b.Run("Lateness/10000", func(b *testing.B) {
		benchScheduleLateness(b, 10000, func(i int) string { return fmt.Sprintf("%d * * * * *", i%60) }, 30*time.Second)
	})
	b.Run("Idle/10000", func(b *testing.B) { benchScheduleIdle(b, 10000) })
}

// scheduleBench is a scheduler with n registered schedules.
type scheduleBench struct {
	ctx context.Context
	b   *bus.Bus
}

func startScheduleBench(b *testing.B, n int, cron func(int) string) *scheduleBench {
	srv := bustest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	bb, err := bus.Connect(bus.Config{URL: srv.ClientURL(), Name: "bench"}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bb.Close)
	if err := bb.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	cl := client.New(bb)
	for i := range n {
		name := fmt.Sprintf("s%05d", i)
		src := fmt.Sprintf("name: %s\nschedule: {cron: %q, overlap: allow_all}\ntasks:\n  a: {executor: noop}\n", name, cron(i))
		p, err := workflow.Parse(name+".yaml", []byte(src), b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := cl.Apply(ctx, client.ApplyParams{Plan: p}); err != nil {
			b.Fatal(err)
		}
	}
	svc, err := New(bb, Config{ScheduleLease: 200 * time.Millisecond}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	// Loaded once the firer stored a state for every schedule.
	kv, err := bb.Schedules(ctx)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := kv.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Values() >= uint64(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d schedule states stored after 2 minutes", st.Values(), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &scheduleBench{ctx: ctx, b: bb}
}

func benchScheduleLateness(b *testing.B, n int, cron func(int) string, window time.Duration) {
	sb := startScheduleBench(b, n, cron)
	c, err := sb.b.JS.OrderedConsumer(sb.ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{event.SubjectRunSubmitted}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.Fatal(err)
	}
	it, err := c.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	b.ResetTimer()
	var late []time.Duration
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		m, err := it.Next(jetstream.NextMaxWait(time.Until(end) + 10*time.Millisecond))
		if err != nil {
			break
		}
		meta, err := m.Metadata()
		if err != nil {
			b.Fatal(err)
		}
		e, err := event.DecodeEvent(m.Data())
		if err != nil || e.ScheduledFor == nil {
			b.Fatalf("submission %v: %v", e, err)
		}
		late = append(late, meta.Timestamp.Sub(*e.ScheduledFor))
	}
	b.StopTimer()
	if len(late) == 0 {
		b.Fatal("nothing fired")
	}
	slices.Sort(late)
	q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(late)), "fires")
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(float64(late[len(late)-1].Microseconds())/1000, "max_ms")
}

func benchScheduleIdle(b *testing.B, n int) {
	// Hourly at minute (now + 30), so nothing fires in the window.
	minute := (time.Now().Minute() + 30) % 60
	startScheduleBench(b, n, func(int) string { return fmt.Sprintf("0 %d * * * *", minute) })
	time.Sleep(2 * time.Second) // the last state writes settle
	b.ResetTimer()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	const window = 10 * time.Second
	before, start := cpu(), time.Now()
	time.Sleep(window)
	used, wall := cpu()-before, time.Since(start)
	b.StopTimer()
	b.ReportMetric(100*used.Seconds()/wall.Seconds(), "cpu_%")
}
