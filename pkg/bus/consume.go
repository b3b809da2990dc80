package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pullExpiry bounds how long one pull request lives. A pull lost in a server restart or a
// reconnect is replaced after at most this long; idle cost is one request per consumer per expiry.
const pullExpiry = 5 * time.Second

// keepPullingOnMissedHeartbeat makes a missed idle heartbeat (a busy host, a slow link) re-issue the
// pull inside the iterator instead of ending Work or Batches with "no heartbeat received", which
// would stop the service pulling for good.
var keepPullingOnMissedHeartbeat = jetstream.WithMessagesErrOnMissingHeartbeat(false)

// ConsumerSpec describes a durable pull consumer.
type ConsumerSpec struct {
	Stream  string
	Durable string
	Filters []string
	// AckWait is how long a delivered message may stay unacknowledged before redelivery.
	AckWait time.Duration
	// MaxDeliver bounds deliveries of one message; 0 means unlimited.
	MaxDeliver int
	// MaxAckPending bounds unacknowledged messages across every instance sharing the consumer.
	MaxAckPending int
}

// Consumer creates or updates a durable pull consumer. Instances that name the same durable share it,
// which is how executors and schedulers scale out. What a cluster refuses for a moment (a stream
// still placing its replicas answers "insufficient resources") is retried, as in Provision.
func (b *Bus) Consumer(ctx context.Context, spec ConsumerSpec) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       spec.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxDeliver:    spec.MaxDeliver,
		MaxAckPending: spec.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = -1
	}
	switch len(spec.Filters) {
	case 0:
	case 1:
		cfg.FilterSubject = spec.Filters[0]
	default:
		cfg.FilterSubjects = spec.Filters
	}
	var c jetstream.Consumer
	err := b.retryTransient(ctx, func(ctx context.Context) error {
		var err error
		c, err = b.JS.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	return c, nil
}

// Work pulls messages and runs fn on each, with at most n in flight. It blocks until ctx is done,
// then stops pulling, waits for the handlers in flight (a soft stop: fn should watch its own context
// for a hard one) and returns nil. fn acknowledges the message itself.
func Work(ctx context.Context, cons jetstream.Consumer, n int, fn func(jetstream.Msg)) error {
	if n < 1 {
		n = 1
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(n), jetstream.PullExpiry(pullExpiry), keepPullingOnMissedHeartbeat)
	if err != nil {
		return fmt.Errorf("starting pull: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		sem <- struct{}{}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pulling: %w", err)
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(msg)
		}()
	}
}

// Batches pulls messages in batches of at most max, waiting at most wait after the first message of
// a batch for more, and runs fn on each batch in turn. It blocks without polling while idle, and
// returns nil when ctx is done after the batch in hand is handled. fn acknowledges the messages.
func Batches(ctx context.Context, cons jetstream.Consumer, maxBatch int, wait time.Duration, fn func([]jetstream.Msg)) error {
	if maxBatch < 1 {
		maxBatch = 1
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2*maxBatch), jetstream.PullExpiry(pullExpiry), keepPullingOnMissedHeartbeat)
	if err != nil {
		return fmt.Errorf("starting pull: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	batch := make([]jetstream.Msg, 0, maxBatch)
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("pulling: %w", err)
		}
		batch = append(batch[:0], msg)
		deadline := time.Now().Add(wait)
		for len(batch) < maxBatch {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			m, err := it.Next(jetstream.NextMaxWait(left))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		fn(batch)
	}
}

// KeepInProgress tells the server every interval that msgs are still being worked on, so that
// they are not redelivered while their work outlasts the consumer's AckWait (give a third of
// it), until the returned function is called. The function waits for the last heartbeat to end;
// calling it again does nothing.
func KeepInProgress(interval time.Duration, msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				for _, m := range msgs {
					_ = m.InProgress() // a lost heartbeat only risks a redelivery, which is handled
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}
