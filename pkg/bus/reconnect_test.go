package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
)

func TestProvisionAppliesLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, bus.Config{EventsMaxBytes: 1 << 20, LogsMaxBytes: bus.Unlimited, TasksMaxMsgs: 5,
		MaxAge: time.Hour, DuplicateWindow: 90 * time.Second})
	got := streamConfigs(t, b)
	if c := got[event.StreamEvents]; c.MaxBytes != 1<<20 || c.MaxAge != time.Hour || c.Duplicates != 90*time.Second {
		t.Errorf("events stream %+v", c)
	}
	if c := got[event.StreamLogs]; c.MaxBytes != -1 || c.MaxAge != time.Hour {
		t.Errorf("logs stream %+v", c)
	}
	if c := got[event.StreamTasks]; c.MaxMsgs != 5 || c.Duplicates != 90*time.Second {
		t.Errorf("tasks stream %+v", c)
	}
}

// An operation in flight when the server goes away is cancelled at once with ErrConnectionLost;
// one started while the connection is down waits for the reconnect and completes.
func TestOpContextEndsWithTheConnection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := bustest.StartDir(t, dir)
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := b.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	inFlight, stopInFlight := b.OpContext(ctx)
	defer stopInFlight()
	done, stopDone := b.OpContext(ctx)
	stopDone()
	if !errors.Is(context.Cause(done), context.Canceled) {
		t.Fatalf("a finished operation's cause is %v", context.Cause(done))
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	select {
	case <-inFlight.Done():
	case <-ctx.Done():
		t.Fatal("the operation in flight was not cancelled when the connection was lost")
	}
	if cause := context.Cause(inFlight); !errors.Is(cause, bus.ErrConnectionLost) {
		t.Fatalf("cause %v, want ErrConnectionLost", cause)
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("parent ended: %v", err)
	}

	// Started while the connection is down: its request waits in the reconnect buffer.
	during, stopDuring := b.OpContext(ctx)
	defer stopDuring()
	put := make(chan error, 1)
	go func() {
		_, err := kv.Put(during, "opctx.key", []byte("v"))
		put <- err
	}()
	bustest.Restart(t, srv, dir)
	select {
	case err := <-put:
		if err != nil {
			t.Fatalf("put across the reconnect: %v (cause %v)", err, context.Cause(during))
		}
	case <-ctx.Done():
		t.Fatal("put across the reconnect did not return")
	}
	e, err := kv.Get(ctx, "opctx.key")
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("get after reconnect: %v", err)
	}
}
