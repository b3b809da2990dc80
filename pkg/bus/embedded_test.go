package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

// The embedded server takes more followers of a stream than nats-server's default of 1,000
// consumers: every open event stream of the API is one.
func TestEmbeddedTakesManyFollowers(t *testing.T) {
	t.Parallel()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	b, err := bus.Connect(bus.Config{InProcess: srv, Name: "followers"}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 1_100
	for i := range n {
		if _, err := b.JS.CreateConsumer(ctx, event.StreamEvents, jetstream.ConsumerConfig{
			FilterSubject: event.SubjectEventsAll, InactiveThreshold: time.Minute, AckPolicy: jetstream.AckNonePolicy}); err != nil {
			t.Fatalf("follower %d of %d: %v", i+1, n, err)
		}
	}
}
