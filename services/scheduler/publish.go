package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

// publish sends the dispatches and events caused by the events of part in one batch. A dispatch
// whose inputs cannot be resolved becomes a task.failed event (reason input), which the scheduler
// then applies like any failure.
func (s *Service) publish(ctx context.Context, g *Graph, part []*pending, cmds []Commands) error {
	n := 0
	for _, c := range cmds {
		n += len(c.Dispatches) + len(c.Events)
	}
	if n == 0 {
		return nil
	}
	runID := part[0].ev.RunID
	now := time.Now().UTC()
	// Messages are published as they are encoded: the first dispatch of a wide run is on its way
	// before the last one is encoded.
	batch := s.b.NewBatch(n)
	var sent []sentDispatch
	if s.cfg.Metrics != nil {
		sent = make([]sentDispatch, 0, n)
	}
	var outputs map[int]json.RawMessage
	for _, c := range cmds {
		for _, o := range c.Outputs {
			if c.Outcome == Applied {
				if outputs == nil {
					outputs = make(map[int]json.RawMessage)
				}
				outputs[o.Task] = o.Value
			}
		}
	}
	for ci, c := range cmds {
		for i := range c.Events {
			e := &c.Events[i]
			if e.ID == "" {
				e.ID = event.NewID()
			}
			m, err := bus.EventMsg(e)
			if err != nil {
				return err
			}
			batch.Add(m)
		}
		for _, d := range c.Dispatches {
			task := g.Task(d.Task)
			inputs, err := s.resolveInputs(ctx, runID, g, task, &outputs)
			if err != nil {
				s.log.Warn("resolving inputs", logging.RunID(runID), logging.Task(task.Name), logging.Attempt(d.Attempt), zap.Error(err))
				f := event.Event{V: event.SchemaVersion, ID: event.NewID(), Type: event.TypeTaskFailed, Time: now,
					RunID: runID, Task: task.Name, Attempt: d.Attempt, Error: err.Error(), Reason: event.ReasonInput}
				m, err := bus.EventMsg(&f)
				if err != nil {
					return err
				}
				batch.Add(m)
				continue
			}
			dm := event.Dispatch{
				V: event.SchemaVersion, RunID: runID, Workflow: g.Plan.Name, Task: *task, Attempt: d.Attempt,
				Dir: g.Plan.Dir, Bundle: g.Plan.Bundle, Inputs: inputs, NotBefore: d.NotBefore, DispatchedAt: now,
			}
			m, err := bus.DispatchMsg(&dm)
			if err != nil {
				return err
			}
			batch.Add(m)
			if sent != nil {
				sd := sentDispatch{typ: task.Executor}
				if !part[ci].redelivered {
					sd.since = part[ci].ev.Time
				}
				sent = append(sent, sd)
			}
		}
	}
	if err := batch.Wait(ctx); err != nil {
		return fmt.Errorf("publishing %d messages: %w", batch.Len(), err)
	}
	s.cfg.Metrics.published(sent, cmds)
	return nil
}

// failInvalid ends a run whose submission cannot be scheduled.
func (s *Service) failInvalid(ctx context.Context, ev *event.Event, invalid *invalidPlanError) error {
	f := event.Event{V: event.SchemaVersion, ID: event.NewID(), Type: event.TypeRunFinished, Time: time.Now().UTC(),
		RunID: ev.RunID, Status: event.RunFailed, Error: invalid.Error()}
	if ev.Plan != nil {
		f.Workflow = ev.Plan.Name
	}
	m, err := bus.EventMsg(&f)
	if err != nil {
		return err
	}
	return s.b.Publish(ctx, m)
}
