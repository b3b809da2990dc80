package scheduler

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
)

// BenchmarkServiceWide runs wide runs of 2,000 and 10,000 noop tasks through a real scheduler on an
// in-process-machine nats-server, with the benchmark playing a batching executor that succeeds every
// dispatch at once. It reports tasks per second end to end.
func BenchmarkServiceWide(b *testing.B) {
	for _, n := range []int{2000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchServiceWide(b, n) })
	}
}

func benchServiceWide(b *testing.B, n int) {
	srv := bustest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bb, err := bus.Connect(bus.Config{URL: srv.ClientURL(), Name: "bench"}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	if err := bb.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	svc, err := New(bb, Config{}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	tasksC, err := bb.Consumer(ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "bench-exec",
		Filters: []string{event.SubjectTasksAll}, AckWait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	execDone := make(chan error, 1)
	go func() {
		execDone <- bus.Batches(ctx, tasksC, 256, time.Millisecond, func(ms []jetstream.Msg) {
			out := make([]bus.Msg, 0, len(ms))
			for _, m := range ms {
				d, err := event.DecodeDispatch(m.Data())
				if err != nil {
					b.Error(err)
					return
				}
				e := event.New(event.TypeTaskSucceeded, d.RunID, d.Task.Name, d.Attempt)
				em, err := bus.EventMsg(&e)
				if err != nil {
					b.Error(err)
					return
				}
				out = append(out, em)
			}
			// A batch that could not be published (a stalled window under load) is redelivered.
			settle := jetstream.Msg.Ack
			if err := bb.Publish(ctx, out...); err != nil {
				settle = jetstream.Msg.Nak
			}
			for _, m := range ms {
				_ = settle(m)
			}
		})
	}()
	finished, err := bb.JS.OrderedConsumer(ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{event.SubjectEventsOfType(event.TypeRunFinished)}})
	if err != nil {
		b.Fatal(err)
	}
	it, err := finished.Messages()
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()

	p := benchPlan("wide", n)
	p.Name = "wide"
	b.ResetTimer()
	for i := range b.N {
		runID := "wide-" + event.NewID()
		sub := submission(runID, "", p)
		m, err := bus.EventMsg(&sub)
		if err != nil {
			b.Fatal(err)
		}
		if err := bb.Publish(ctx, m); err != nil {
			b.Fatal(err)
		}
		msg, err := it.Next(jetstream.NextMaxWait(2 * time.Minute))
		if err != nil {
			b.Fatalf("run %d: %v", i, err)
		}
		if e, err := event.DecodeEvent(msg.Data()); err != nil || e.RunID != runID || e.Status != event.RunSuccess {
			b.Fatalf("run %d finished: %+v %v", i, e, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tasks/s")
	cancel()
	if err := <-done; err != nil {
		b.Error(err)
	}
	if err := <-execDone; err != nil {
		b.Error(err)
	}
}
