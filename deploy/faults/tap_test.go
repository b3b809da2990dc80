package faults_test

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/pkg/event"
)

// delivery is one delivery of a dispatch to an executor, seen by the tap.
type delivery struct {
	key       string // run/task/attempt
	delivered uint64
	streamSeq uint64
	at        time.Duration
}

// tap records every delivery of ORK_TASKS to any executor: pull consumers deliver to inboxes,
// which a core subscription to _INBOX.> also receives. When an attempt runs twice, its deliveries
// (with their delivery counts and stream sequences) tell whether the executor saw it as redelivered
// or as a new message. The tap misses what is delivered while its own connection is down.
type tap struct {
	mu         sync.Mutex
	start      time.Time
	deliveries map[string][]delivery
	sub        *nats.Subscription
}

func startTap(nc *nats.Conn) (*tap, error) {
	tp := &tap{start: time.Now(), deliveries: map[string][]delivery{}}
	sub, err := nc.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if !strings.HasPrefix(m.Reply, "$JS.ACK."+event.StreamTasks+".") {
			return
		}
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		d, err := event.DecodeDispatch(m.Data)
		if err != nil {
			return
		}
		key := d.MsgID()
		tp.mu.Lock()
		tp.deliveries[key] = append(tp.deliveries[key], delivery{key: key, delivered: meta.NumDelivered,
			streamSeq: meta.Sequence.Stream, at: time.Since(tp.start)})
		tp.mu.Unlock()
	})
	if err != nil {
		return nil, fmt.Errorf("tapping deliveries: %w", err)
	}
	tp.sub = sub
	return tp, nil
}

// explain describes the deliveries of every attempt the ledger shows executed more than once.
func (tp *tap) explain(execs []faults.Execution) string {
	count := map[string]int{}
	for _, x := range execs {
		count[fmt.Sprintf("%s/%s/%d", x.RunID, x.Task, x.Attempt)]++
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var b strings.Builder
	for key, n := range count {
		if n < 2 {
			continue
		}
		fmt.Fprintf(&b, "attempt %s executed %d times; its deliveries:", key, n)
		for _, d := range tp.deliveries[key] {
			fmt.Fprintf(&b, " [%.2fs stream seq %d, delivery %d]", d.at.Seconds(), d.streamSeq, d.delivered)
		}
		b.WriteString("\n")
	}
	return b.String()
}
