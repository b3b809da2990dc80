package faults

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/event"
)

// streamTally is what the streams carried for a set of runs: the attempts their task events name
// and the log lines shipped for them.
type streamTally struct {
	attempts map[attemptKey]bool
	logs     map[logKey]bool
}

// readStreams reads ORK_EVENTS and ORK_LOGS from their first to their last message.
func readStreams(ctx context.Context, url string, runIDs []string) (*streamTally, error) {
	nc, err := nats.Connect(url, nats.Name("ork-faults-check"))
	if err != nil {
		return nil, fmt.Errorf("connecting to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("connecting to jetstream: %w", err)
	}
	runs := map[string]bool{}
	for _, id := range runIDs {
		runs[id] = true
	}
	t := &streamTally{attempts: map[attemptKey]bool{}, logs: map[logKey]bool{}}
	err = readStream(ctx, js, event.StreamEvents, func(data []byte) {
		e, err := event.DecodeEvent(data)
		if err != nil || !runs[e.RunID] || e.Task == "" || e.Attempt < 1 {
			return
		}
		switch e.Type {
		case event.TypeTaskDispatched, event.TypeTaskStarted, event.TypeTaskSucceeded, event.TypeTaskFailed:
			t.attempts[attemptKey{run: e.RunID, task: e.Task, attempt: e.Attempt}] = true
		}
	})
	if err != nil {
		return nil, err
	}
	err = readStream(ctx, js, event.StreamLogs, func(data []byte) {
		b, err := event.DecodeLogBatch(data)
		if err != nil || !runs[b.RunID] {
			return
		}
		for _, l := range b.Lines {
			t.logs[logKey{attemptKey: attemptKey{run: b.RunID, task: b.Task, attempt: b.Attempt}, seq: l.Seq}] = true
		}
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// readStream calls fn with every message of a stream up to its last sequence at the time of the
// call, in order.
func readStream(ctx context.Context, js jetstream.JetStream, name string, fn func([]byte)) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", name, err)
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", name, err)
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", name, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			fn(msg.Data())
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("reading stream %s: %w", name, err)
			}
			if meta.Sequence.Stream >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("reading stream %s: %w", name, err)
		}
		if n == 0 {
			return fmt.Errorf("reading stream %s: no message before sequence %d", name, last)
		}
	}
}
