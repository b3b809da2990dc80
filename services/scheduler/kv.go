package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/workflow"
)

// claimIdempotencyKey records the run of a submission's idempotency key. It reports false when the
// key already belongs to another run: the submission is a duplicate.
func (s *Service) claimIdempotencyKey(ctx context.Context, ev *event.Event) (bool, error) {
	sum := sha256.Sum256([]byte(ev.IdempotencyKey))
	key := "idem." + hex.EncodeToString(sum[:16])
	_, err := s.kv.Create(ctx, key, []byte(ev.RunID))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("claiming idempotency key: %w", err)
	}
	entry, err := s.kv.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading idempotency key: %w", err)
	}
	if string(entry.Value()) != ev.RunID {
		s.log.Info("duplicate submission ignored", logging.RunID(ev.RunID), zap.String("existing_run_id", string(entry.Value())),
			zap.String("idempotency_key", ev.IdempotencyKey))
		return false, nil
	}
	// The same run: an earlier delivery of this submission claimed the key.
	return true, nil
}

func stateKey(runID string) string { return event.RunStateKey(runID) }
func planKey(runID string) string  { return "plan." + runID }

// outKey is "out.<run>.<task>"; a task name that is not a valid key token is hex encoded.
func outKey(runID, task string) string {
	if !validToken(task) {
		return "out." + runID + ".=" + hex.EncodeToString([]byte(task))
	}
	return "out." + runID + "." + task
}

// validToken reports whether s can be one token of a KV key and of a subject.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// apply runs Apply on the events of one run in order, against the stored state, and writes the
// result with compare-and-swap, reloading and re-applying on conflict. A verdict other than Applied is
// only trusted on a freshly loaded state.
func (s *Service) apply(ctx context.Context, e *runEntry, part []*pending) ([]Commands, error) {
	runID := part[0].ev.RunID
	cmds := make([]Commands, len(part))
	fresh := false
	for range s.cfg.CASRetries {
		if e.state == nil {
			if err := s.load(ctx, e, part[0].ev); err != nil {
				return nil, err
			}
			fresh = true
		}
		now := time.Now().UTC()
		applied, verified := false, true
		var outputs []Output
		for i, p := range part {
			c, err := Apply(e.graph, e.state, p.ev, now, s.policy())
			if err != nil {
				e.state = nil
				return nil, err
			}
			cmds[i] = c
			if c.Outcome == Applied {
				applied = true
				outputs = append(outputs, c.Outputs...)
			} else if !fresh {
				verified = false
			}
		}
		if !verified {
			e.state = nil
			continue
		}
		for i, p := range part {
			// A redelivered event may be the one whose handling wrote this state and died before
			// publishing what it caused, run.finished included: an event of a finished run is Stale,
			// not Duplicate, yet it must re-publish the end too, or the run never ends downstream.
			if p.redelivered && (cmds[i].Outcome == Duplicate || cmds[i].Outcome == Stale && e.state.Status.Terminal()) {
				reason := cmds[i].Reason
				cmds[i] = Replay(e.graph, e.state, p.ev, now, s.policy())
				cmds[i].Reason = reason
			}
		}
		if !applied {
			return cmds, nil
		}
		if err := s.putOutputs(ctx, runID, e.graph, outputs); err != nil {
			e.state = nil
			return nil, err
		}
		data, err := e.state.MarshalBinary()
		if err != nil {
			e.state = nil
			return nil, fmt.Errorf("encoding run state: %w", err)
		}
		var rev uint64
		if e.rev == 0 {
			rev, err = s.kv.Create(ctx, stateKey(runID), data)
		} else {
			rev, err = s.kv.Update(ctx, stateKey(runID), data, e.rev)
		}
		if err == nil {
			e.rev = rev
			return cmds, nil
		}
		e.state, fresh = nil, false
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("writing run state: %w", err)
		}
		s.cfg.Metrics.casConflict()
	}
	return nil, fmt.Errorf("writing run state: %d compare-and-swap conflicts in a row", s.cfg.CASRetries)
}

// load reads a run's state (and its plan, unless it is cached or the run is compacted). For a
// submission of a run without state it creates the plan entry and a new state.
func (s *Service) load(ctx context.Context, e *runEntry, ev *event.Event) error {
	entry, err := s.kv.Get(ctx, stateKey(ev.RunID))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) && ev.Type == event.TypeRunSubmitted:
		return s.initRun(ctx, e, ev)
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return errUnknownRun
	case err != nil:
		return fmt.Errorf("reading run state: %w", err)
	}
	st := new(RunState)
	if err := st.UnmarshalBinary(entry.Value()); err != nil {
		return fmt.Errorf("run %s: %w", ev.RunID, err)
	}
	if !st.Compacted && e.graph == nil {
		pe, err := s.kv.Get(ctx, planKey(ev.RunID))
		if err != nil {
			return fmt.Errorf("reading plan: %w", err)
		}
		if e.graph, err = decodeGraph(pe.Value()); err != nil {
			return fmt.Errorf("stored plan of run %s: %w", ev.RunID, err)
		}
	}
	e.state, e.rev = st, entry.Revision()
	return nil
}

func (s *Service) initRun(ctx context.Context, e *runEntry, ev *event.Event) error {
	if ev.Plan == nil {
		return &invalidPlanError{errors.New("the submission carries no plan")}
	}
	if err := ev.Plan.Validate(); err != nil {
		return &invalidPlanError{err}
	}
	g, err := NewGraph(ev.Plan)
	if err != nil {
		return &invalidPlanError{err}
	}
	params, err := g.bindParams(ev.Params)
	if err != nil {
		return &invalidPlanError{err}
	}
	if err := g.bindReuse(ev.Reuse); err != nil {
		return &invalidPlanError{err}
	}
	data, err := json.Marshal(storedPlan{Plan: ev.Plan, RunParams: params, Reuse: ev.Reuse})
	if err != nil {
		return fmt.Errorf("encoding plan: %w", err)
	}
	if _, err := s.kv.Create(ctx, planKey(ev.RunID), data); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("writing plan: %w", err)
		}
		// An earlier delivery wrote it: schedule with the stored plan.
		pe, err := s.kv.Get(ctx, planKey(ev.RunID))
		if err != nil {
			return fmt.Errorf("reading plan: %w", err)
		}
		if g, err = decodeGraph(pe.Value()); err != nil {
			return fmt.Errorf("stored plan of run %s: %w", ev.RunID, err)
		}
	}
	e.graph, e.state, e.rev = g, NewRunState(g), 0
	return nil
}

// storedPlan is a run's plan as the scheduler keeps it in the bucket: the plan and the run's
// bound parameters (absent in records written before parameters existed).
type storedPlan struct {
	*workflow.Plan
	RunParams json.RawMessage `json:"run_params,omitempty"`
	// Reuse is a rerun's reused outputs by task name.
	Reuse map[string]json.RawMessage `json:"reuse,omitempty"`
}

func decodeGraph(data []byte) (*Graph, error) {
	sp := storedPlan{Plan: new(workflow.Plan)}
	if err := json.Unmarshal(data, &sp); err != nil {
		return nil, fmt.Errorf("decoding plan: %w", err)
	}
	g, err := NewGraph(sp.Plan)
	if err != nil {
		return nil, err
	}
	if _, err := g.bindParams(sp.RunParams); err != nil {
		return nil, err
	}
	if err := g.bindReuse(sp.Reuse); err != nil {
		return nil, err
	}
	return g, nil
}

func (s *Service) putOutputs(ctx context.Context, runID string, g *Graph, outs []Output) error {
	for _, o := range outs {
		if _, err := s.kv.Put(ctx, outKey(runID, g.Task(o.Task).Name), o.Value); err != nil {
			return fmt.Errorf("storing output of %q: %w", g.Task(o.Task).Name, err)
		}
	}
	return nil
}

// compact replaces a finished run's state by its tombstone and deletes its plan and outputs. A
// failure only leaves them to the bucket's TTL.
func (s *Service) compact(ctx context.Context, runID string, e *runEntry) {
	g, st := e.graph, e.state
	data, err := st.Tombstone().MarshalBinary()
	if err == nil {
		var rev uint64
		rev, err = s.kv.Update(ctx, stateKey(runID), data, e.rev)
		if err == nil {
			e.state, e.rev, e.graph, e.done = st.Tombstone(), rev, nil, true
		}
	}
	if err != nil {
		e.state = nil
		s.log.Warn("compacting run state", logging.RunID(runID), zap.Error(err))
		return
	}
	for i := range st.Tasks {
		if g.referenced[i] && st.Tasks[i].Status == TaskSucceeded {
			if err := s.kv.Delete(ctx, outKey(runID, g.Task(i).Name)); err != nil {
				s.log.Warn("deleting output", logging.RunID(runID), logging.Task(g.Task(i).Name), zap.Error(err))
			}
		}
	}
	if err := s.kv.Delete(ctx, planKey(runID)); err != nil {
		s.log.Warn("deleting plan", logging.RunID(runID), zap.Error(err))
	}
}
