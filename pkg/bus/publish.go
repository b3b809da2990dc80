package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

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

// PublishTryTimeoutDefault bounds one try of PublishUntilStored.
const PublishTryTimeoutDefault = 5 * time.Second

// Backoff of PublishUntilStored.
const (
	publishRetryMin = 100 * time.Millisecond
	publishRetryMax = 2 * time.Second
)

// PublishUntilStored publishes m and waits for the stream's ack, trying again (with the same
// deduplication id, so a retry never stores it twice) until it is stored, the stream refuses it
// for good (or the server's permissions refuse it), or ctx ends. Each try is bounded and ends at once when the connection is lost: a
// publish sent just before a server crash or restart never gets its ack, and waiting for ctx's
// deadline would leave a client hanging for as long. It is for clients (a submission, a control
// request); the services retry through redelivery instead.
func (b *Bus) PublishUntilStored(ctx context.Context, m Msg) error {
	_, err := b.PublishUntilStoredAck(ctx, m)
	return err
}

// PublishUntilStoredAck is PublishUntilStored returning the stream's acknowledgement, whose
// Duplicate says the stream already held a message with that id (within its duplicate window; a
// retry after a lost acknowledgement sees its own first try as one).
func (b *Bus) PublishUntilStoredAck(ctx context.Context, m Msg) (*jetstream.PubAck, error) {
	if m.MsgID == "" {
		return nil, fmt.Errorf("publishing %s: a retried publish needs a deduplication id", m.Subject)
	}
	wait := publishRetryMin
	for {
		tctx, cancel := b.OpContext(ctx)
		var ack *jetstream.PubAck
		err := b.attempt(tctx, b.cfg.PublishTryTimeout, func(ctx context.Context) error {
			var err error
			ack, err = b.JS.PublishMsg(ctx, natsMsg(m))
			return err
		})
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("publishing %s (%s): %w (last try: %v)", m.Subject, m.MsgID, ctx.Err(), err)
		}
		if !retryable(err) {
			return nil, fmt.Errorf("publishing %s (%s): %w", m.Subject, m.MsgID, err)
		}
		b.log.Debug("publish not acknowledged; trying again", zap.String("subject", m.Subject), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("publishing %s (%s): %w (last try: %v)", m.Subject, m.MsgID, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, publishRetryMax)
	}
}

// retryable tells whether a failed publish may succeed when tried again (ctx being still alive):
// the try timed out or was cut by a lost connection, nobody answered (a stream between leaders, a
// server restarting), or the cluster said "not now".
func retryable(err error) bool {
	if RefusedForGood(err) || errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrTimeout) || transient(err)
}

// RefusedForGood tells whether a stream answered that it will not store a message however often it
// is sent: the stream is full (it discards new messages) or the message is over its size limit.
func RefusedForGood(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return true
	case jsErrCodeStreamStoreFailed:
		// The same code also carries transient store errors ("store closed" while the server stops).
		return strings.HasPrefix(apiErr.Description, "maximum ") || strings.Contains(apiErr.Description, "too large")
	}
	return false
}

// jsErrCodeStreamStoreFailed is the server's code for a message the stream did not store, with the
// reason as the description ("maximum bytes exceeded" when a stream that discards new messages is
// full); nats.go has no constant for it.
const jsErrCodeStreamStoreFailed jetstream.ErrorCode = 10077
