package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/event"
)

// Msg is one message to publish with its deduplication id.
type Msg struct {
	Subject string
	MsgID   string
	Data    []byte
}

// EventMsg encodes an event into a Msg.
func EventMsg(e *event.Event) (Msg, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return Msg{}, fmt.Errorf("encoding event %s: %w", e.Type, err)
	}
	return Msg{Subject: e.Subject(), MsgID: e.MsgID(), Data: data}, nil
}

// DispatchMsg encodes a dispatch into a Msg.
func DispatchMsg(d *event.Dispatch) (Msg, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return Msg{}, fmt.Errorf("encoding dispatch %s: %w", d.MsgID(), err)
	}
	return Msg{Subject: d.Subject(), MsgID: d.MsgID(), Data: data}, nil
}

// LogMsg encodes a log batch into a Msg.
func LogMsg(lb *event.LogBatch) (Msg, error) {
	data, err := json.Marshal(lb)
	if err != nil {
		return Msg{}, fmt.Errorf("encoding log batch: %w", err)
	}
	return Msg{Subject: lb.Subject(), MsgID: lb.MsgID(), Data: data}, nil
}

// Publish publishes the messages asynchronously and waits until every one is acknowledged by the
// stream (a duplicate counts as acknowledged). It returns an error naming every message that was
// not stored, for example because a stream limit was reached: nothing is dropped silently.
func (b *Bus) Publish(ctx context.Context, msgs ...Msg) error {
	if len(msgs) == 1 {
		m := msgs[0]
		if _, err := b.JS.PublishMsg(ctx, natsMsg(m)); err != nil {
			return fmt.Errorf("publishing %s (%s): %w", m.Subject, m.MsgID, err)
		}
		return nil
	}
	batch := b.NewBatch(len(msgs))
	for _, m := range msgs {
		batch.Add(m)
	}
	return batch.Wait(ctx)
}

// Batch publishes messages asynchronously as they are added, so the first is on its way while the
// caller is still encoding the rest, and waits for all of their acks at the end.
type Batch struct {
	b       *Bus
	futures []jetstream.PubAckFuture
	errs    []error
}

// NewBatch starts a batch; size is a capacity hint.
func (b *Bus) NewBatch(size int) *Batch {
	return &Batch{b: b, futures: make([]jetstream.PubAckFuture, 0, size)}
}

// Add starts publishing m.
func (bt *Batch) Add(m Msg) {
	f, err := bt.b.JS.PublishMsgAsync(natsMsg(m))
	if err != nil {
		bt.errs = append(bt.errs, fmt.Errorf("publishing %s (%s): %w", m.Subject, m.MsgID, err))
		return
	}
	bt.futures = append(bt.futures, f)
}

// Len is the number of messages added.
func (bt *Batch) Len() int { return len(bt.futures) + len(bt.errs) }

// Wait waits until every added message is acknowledged and returns an error naming each one that
// was not stored.
func (bt *Batch) Wait(ctx context.Context) error {
	for _, f := range bt.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			bt.errs = append(bt.errs, fmt.Errorf("publishing %s: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return fmt.Errorf("waiting for publish acks: %w", ctx.Err())
		}
	}
	bt.futures = bt.futures[:0]
	return errors.Join(bt.errs...)
}

func natsMsg(m Msg) *nats.Msg {
	nm := nats.NewMsg(m.Subject)
	nm.Data = m.Data
	if m.MsgID != "" {
		nm.Header.Set(jetstream.MsgIDHeader, m.MsgID)
	}
	return nm
}

// PublishAck publishes one message and waits for the stream's acknowledgement, which it returns.
// PubAck.Duplicate is true when the stream already held a message with the same MsgID within its
// duplicate window: callers use it to learn that an event was published before (by them or by
// another process), for example that an attempt had already started.
func (b *Bus) PublishAck(ctx context.Context, m Msg) (*jetstream.PubAck, error) {
	ack, err := b.JS.PublishMsg(ctx, natsMsg(m))
	if err != nil {
		return nil, fmt.Errorf("publishing %s (%s): %w", m.Subject, m.MsgID, err)
	}
	return ack, nil
}
