package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/event"
)

// LogsParams selects the log lines FollowLogs delivers.
type LogsParams struct {
	RunID string // required
	Task  string // "" for every task of the run
	// AfterSeq, when set, starts after that ORK_LOGS sequence (the seq FollowLogs passes), to resume.
	AfterSeq uint64
	// Ready, when set, is called once the server has the follower's consumer.
	Ready func()
	// Ended says the run has ended (its events, past the stream's MaxAge, may be gone): deliver
	// what is stored and return.
	Ended bool
}

// FollowLogs calls fn with each log batch of a run (or of one of its tasks) in stream order, with
// its ORK_LOGS sequence: those stored so far, then the new ones as the tasks print them. It returns
// nil once the run has finished and every batch stored before its end has been delivered (an
// attempt's lines are stored before its end), fn's error, or ctx's error.
func (c *Client) FollowLogs(ctx context.Context, p LogsParams, fn func(seq uint64, b event.LogBatch) error) error {
	if p.RunID == "" {
		return errors.New("following logs: a run id is required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	finished := make(chan error, 1)
	if p.Ended {
		finished <- nil
	} else {
		go func() {
			_, err := c.Wait(ctx, WaitParams{RunID: p.RunID})
			finished <- err
		}()
	}

	filter := event.SubjectRunLogs(p.RunID)
	if p.Task != "" {
		filter = event.SubjectTaskLogs(p.RunID, p.Task)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if p.AfterSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.AfterSeq+1
	}
	cons, err := c.bus.JS.OrderedConsumer(ctx, event.StreamLogs, cfg)
	if err != nil {
		return fmt.Errorf("following the logs of run %s: %w", p.RunID, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("following the logs of run %s: %w", p.RunID, err)
	}
	defer it.Stop()
	if p.Ready != nil {
		p.Ready()
	}
	msgs := make(chan jetstream.Msg)
	iterErr := make(chan error, 1)
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				iterErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Once the run has ended, every batch of it is stored: the server says how many it has
	// delivered (the consumer sequence, when none is left to deliver), and the follower is done when
	// it has processed that many. Until then it reads on.
	var last uint64 // the consumer sequence of the last message processed
	var target uint64
	haveTarget, ended := false, false
	checkEnd := func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("following the logs of run %s: %w", p.RunID, err)
		}
		if info.NumPending == 0 {
			target, haveTarget = info.Delivered.Consumer, true
		}
		return nil
	}
	for {
		if haveTarget && last >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-finished:
			if err != nil {
				return err
			}
			ended, finished = true, nil
			if err := checkEnd(); err != nil {
				return err
			}
		case err := <-iterErr:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("following the logs of run %s: %w", p.RunID, err)
		case m := <-msgs:
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			last = meta.Sequence.Consumer
			if b, err := event.DecodeLogBatch(m.Data()); err == nil { // else the recorder keeps it as a dead letter
				if err := fn(meta.Sequence.Stream, b); err != nil {
					if errors.Is(err, ErrStop) {
						return nil
					}
					return err
				}
			}
			if ended && !haveTarget && meta.NumPending == 0 {
				if err := checkEnd(); err != nil {
					return err
				}
			}
		}
	}
}
