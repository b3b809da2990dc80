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
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var errs []error
	for _, m := range msgs {
		f, err := b.JS.PublishMsgAsync(natsMsg(m))
		if err != nil {
			errs = append(errs, fmt.Errorf("publishing %s (%s): %w", m.Subject, m.MsgID, err))
			continue
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publishing %s: %w", f.Msg().Subject, err))
		case <-ctx.Done():
			return fmt.Errorf("waiting for publish acks: %w", ctx.Err())
		}
	}
	return errors.Join(errs...)
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
