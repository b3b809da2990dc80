package faults

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

// streamTally is what the streams carried for a set of runs: the attempts their task events name
// and the log lines shipped for them.
// Each key maps to the stream sequences of the messages naming it, so that messages the recorder
// dead-lettered on purpose can be left out.
type streamTally struct {
	attempts map[attemptKey][]uint64
	logs     map[logKey][]uint64
}

// readStreams reads ORK_EVENTS and ORK_LOGS from their first to their last message.
func readStreams(ctx context.Context, url string, auth bus.Auth, runIDs []string) (*streamTally, error) {
	b, err := bus.Connect(bus.Config{URL: url, Name: "ork-faults-check", Auth: auth}, zap.NewNop())
	if err != nil {
		return nil, err
	}
	defer b.Close()
	js := b.JS
	runs := map[string]bool{}
	for _, id := range runIDs {
		runs[id] = true
	}
	t := &streamTally{attempts: map[attemptKey][]uint64{}, logs: map[logKey][]uint64{}}
	err = readStream(ctx, js, event.StreamEvents, func(seq uint64, data []byte) {
		e, err := event.DecodeEvent(data)
		if err != nil || !runs[e.RunID] || e.Task == "" || e.Attempt < 1 {
			return
		}
		switch e.Type {
		case event.TypeTaskDispatched, event.TypeTaskStarted, event.TypeTaskSucceeded, event.TypeTaskFailed:
			k := attemptKey{run: e.RunID, task: e.Task, attempt: e.Attempt}
			t.attempts[k] = append(t.attempts[k], seq)
		}
	})
	if err != nil {
		return nil, err
	}
	err = readStream(ctx, js, event.StreamLogs, func(seq uint64, data []byte) {
		b, err := event.DecodeLogBatch(data)
		if err != nil || !runs[b.RunID] {
			return
		}
		for _, l := range b.Lines {
			k := logKey{attemptKey: attemptKey{run: b.RunID, task: b.Task, attempt: b.Attempt}, seq: l.Seq}
			t.logs[k] = append(t.logs[k], seq)
		}
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// readStream calls fn with every message of a stream up to its last sequence at the time of the
// call, in order.
func readStream(ctx context.Context, js jetstream.JetStream, name string, fn func(seq uint64, data []byte)) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", name, err)
	}
	state := s.CachedInfo().State
	last := state.LastSeq
	if state.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", name, err)
	}
	// Fetch exactly what is left, and drain every batch, so that no fetch outlives the call.
	seen := state.FirstSeq - 1
	for seen < last {
		batch, err := cons.Fetch(int(min(500, last-seen)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", name, err)
		}
		n := 0
		var metaErr error
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				metaErr = err
				continue
			}
			n++
			seen = max(seen, meta.Sequence.Stream)
			fn(meta.Sequence.Stream, msg.Data())
		}
		if metaErr != nil {
			return fmt.Errorf("reading stream %s: %w", name, metaErr)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("reading stream %s: %w", name, err)
		}
		if n == 0 {
			return fmt.Errorf("reading stream %s: no message after sequence %d of %d", name, seen, last)
		}
	}
	return nil
}
