package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/workflow"
)

// Events delivered to the scheduler while the server was silent are lost in transit and come
// back after restartAckWait; a handler stuck on a request lost with the old server would wait for
// its OpTimeout, restartOpTimeout. restartRecovery, how long after the restart the runs may take
// to finish, lies between: their remaining tasks take milliseconds.
const (
	restartAckWait   = 5 * time.Second
	restartOpTimeout = 30 * time.Second
	restartRecovery  = restartAckWait + 5*time.Second
)

// A scheduler busy with several runs when nats-server crashes and restarts on the same store
// resumes within a few seconds of the restart: a run-state write in flight at the crash, whose
// reply never comes, is cancelled when the connection drops instead of waiting for OpTimeout.
func TestServiceRecoversFromNATSRestart(t *testing.T) {
	t.Parallel()
	const runs, chain = 8, 40
	dir := t.TempDir()
	srv := bustest.StartDir(t, dir)
	// The scheduler talks to the server through a proxy that can make it fall silent mid-request,
	// as a crashed server does; the test's executor talks to it directly.
	proxy := bustest.NewProxy(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	connect := func(name, url string) *bus.Bus {
		b, err := bus.Connect(bus.Config{URL: url, Name: name}, zaptest.NewLogger(t).Named(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	sb, eb := connect("scheduler", proxy.URL()), connect("executor", srv.ClientURL())
	if err := sb.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := New(sb, Config{AckWait: restartAckWait, OpTimeout: restartOpTimeout, ReconcileInterval: -1,
		Backoff: Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	svcCtx, stopSvc := context.WithCancel(ctx)
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(svcCtx) }()
	var executed atomic.Int64
	stopExecutor := startExecutor(t, ctx, eb, &executed)
	// Stopped before the servers (the cleanups of Restart run first).
	defer func() {
		stopExecutor()
		stopSvc()
		if err := <-svcDone; err != nil {
			t.Errorf("scheduler Run: %v", err)
		}
	}()

	ids := make(map[string]bool, runs)
	for i := range runs {
		tasks := make([]workflow.Task, chain)
		for j := range tasks {
			tasks[j].Name = fmt.Sprintf("t%02d", j)
			if j > 0 {
				tasks[j].DependsOn = []string{tasks[j-1].Name}
			}
		}
		id := fmt.Sprintf("restart-%d", i)
		ids[id] = true
		m, err := bus.EventMsg(new(submission(id, "", plan(id, tasks...))))
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	// Crash while every run is in the middle of its chain: the server falls silent as soon as the
	// scheduler sends a run-state write, which it applies but never answers; then the connections
	// drop and the server restarts.
	poll.Until(t, ctx, "a quarter of the tasks executed", func() bool { return executed.Load() >= runs*chain/4 })
	select {
	case <-proxy.SilenceAfter("PUB $KV." + event.BucketRuns + "." + stateKey("")):
	case <-ctx.Done():
		t.Fatal("the scheduler sent no run-state write")
	}
	proxy.Cut()
	bustest.Restart(t, srv, dir)
	restarted := time.Now().UTC()
	t.Logf("nats-server restarted after %d of %d tasks", executed.Load(), runs*chain)

	// Created after the restart, so it reads every run.finished without waiting to notice that
	// the server it was created on is gone.
	finished, err := eb.JS.OrderedConsumer(ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{event.SubjectEventsOfType(event.TypeRunFinished)},
	})
	if err != nil {
		t.Fatal(err)
	}
	it, err := finished.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	var last time.Duration
	for len(ids) > 0 {
		m, err := it.Next(jetstream.NextMaxWait(time.Until(deadlineOf(ctx))))
		if err != nil {
			t.Fatalf("runs %v did not finish: %v", ids, err)
		}
		ev, err := event.DecodeEvent(m.Data())
		if err != nil || !ids[ev.RunID] {
			continue
		}
		delete(ids, ev.RunID)
		if ev.Status != event.RunSuccess {
			t.Errorf("run %s finished %s: %s", ev.RunID, ev.Status, ev.Error)
		}
		late := ev.Time.Sub(restarted)
		last = max(last, late)
		if late > restartRecovery {
			t.Errorf("run %s finished %s after the restart, want within %s", ev.RunID, late.Round(time.Millisecond), restartRecovery)
		}
	}
	t.Logf("the last run finished %s after the restart, seen after %s", last.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
}

// startExecutor plays a noop executor on b until stop is called: it reports every dispatch
// succeeded and acknowledges it, retrying the publish until it is stored.
func startExecutor(t *testing.T, ctx context.Context, b *bus.Bus, executed *atomic.Int64) (stop func()) {
	t.Helper()
	cons, err := b.Consumer(ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "test-executor",
		Filters: []string{event.SubjectTasks(workflow.ExecutorNoop)}, AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.Work(wctx, cons, 16, func(m jetstream.Msg) {
			d, err := event.DecodeDispatch(m.Data())
			if err != nil {
				_ = m.Term()
				return
			}
			msg, err := bus.EventMsg(new(succeeded(d, "")))
			if err != nil {
				_ = m.Term()
				return
			}
			for wctx.Err() == nil {
				pctx, cancel := context.WithTimeout(wctx, time.Second)
				err := b.Publish(pctx, msg)
				cancel()
				if err == nil {
					executed.Add(1)
					_ = m.Ack()
					return
				}
				// Refused at once while the server restarts: retry a little later.
				select {
				case <-wctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("test executor: %v", err)
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
