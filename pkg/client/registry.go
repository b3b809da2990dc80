package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/workflow"
)

// The workflow registry: named workflows kept in the ork_workflows bucket, one key per name with
// its current plan, so that a run can be started by name (Trigger) from anywhere that reaches NATS,
// and the scheduler can fire their schedules. The recorder mirrors each registration into the
// database, which keeps every version.

// ErrNotRegistered is a workflow name the registry does not hold.
var ErrNotRegistered = errors.New("no such registered workflow")

// Registered is one workflow in the registry.
type Registered struct {
	Plan *workflow.Plan
	// Revision counts the registry's changes (the bucket's revision of this key): it grows with
	// every apply that changed the workflow.
	Revision  uint64
	AppliedAt time.Time
	AppliedBy string
	// Source is the YAML the workflow was registered from ("" when the registration did not
	// give it), for people to read: runs use the plan.
	Source string
}

// registration is a registry entry as stored.
type registration struct {
	Plan      *workflow.Plan `json:"plan"`
	AppliedAt time.Time      `json:"applied_at"`
	AppliedBy string         `json:"applied_by,omitempty"`
	Source    string         `json:"source,omitempty"`
}

// DecodeRegistration decodes a registry entry (a value of the ork_workflows bucket).
func DecodeRegistration(data []byte, revision uint64) (Registered, error) {
	var r registration
	if err := json.Unmarshal(data, &r); err != nil {
		return Registered{}, fmt.Errorf("decoding a registered workflow: %w", err)
	}
	if r.Plan == nil {
		return Registered{}, errors.New("decoding a registered workflow: no plan")
	}
	return Registered{Plan: r.Plan, Revision: revision, AppliedAt: r.AppliedAt, AppliedBy: r.AppliedBy, Source: r.Source}, nil
}

// ApplyParams registers a workflow.
type ApplyParams struct {
	// Plan is the compiled workflow (workflow.Load). It replaces the registered one of its name.
	Plan *workflow.Plan
	// By says who applied it ("cli", "api", a user name).
	By string
	// Source is the YAML the plan was compiled from, kept with it for people to read.
	Source string
}

// Apply registers p.Plan under its name, or replaces the registered one. Applying the same plan
// (same hash, folder and source, or no source given) again changes nothing: changed is false and the registration is the
// existing one. Concurrent applies of one name are serialised by the bucket's revisions.
func (c *Client) Apply(ctx context.Context, p ApplyParams) (reg Registered, changed bool, err error) {
	if p.Plan == nil {
		return Registered{}, false, errors.New("applying a workflow: plan is required")
	}
	if err := p.Plan.Validate(); err != nil {
		return Registered{}, false, err
	}
	kv, err := c.bus.Workflows(ctx)
	if err != nil {
		return Registered{}, false, err
	}
	name := p.Plan.Name
	for {
		cur, err := kv.Get(ctx, name)
		var rev uint64
		switch {
		case err == nil:
			rev = cur.Revision()
			old, derr := DecodeRegistration(cur.Value(), rev)
			if derr == nil && old.Plan.Hash == p.Plan.Hash && old.Plan.Dir == p.Plan.Dir && (p.Source == "" || p.Source == old.Source) {
				return old, false, nil
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// new, or deleted: Create takes a deleted key back
		default:
			return Registered{}, false, fmt.Errorf("reading workflow %s from the registry: %w", name, err)
		}
		now := time.Now().UTC()
		data, err := json.Marshal(registration{Plan: p.Plan, AppliedAt: now, AppliedBy: p.By, Source: p.Source})
		if err != nil {
			return Registered{}, false, err
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = kv.Create(ctx, name, data)
		} else {
			newRev, err = kv.Update(ctx, name, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
			continue // another apply won the race: read again
		}
		if err != nil {
			return Registered{}, false, fmt.Errorf("registering workflow %s: %w", name, err)
		}
		return Registered{Plan: p.Plan, Revision: newRev, AppliedAt: now, AppliedBy: p.By, Source: p.Source}, true, nil
	}
}

// isWrongLastSequence is a compare-and-set that lost: the key changed since it was read.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Workflow returns the registered workflow name, or ErrNotRegistered.
func (c *Client) Workflow(ctx context.Context, name string) (Registered, error) {
	kv, err := c.bus.Workflows(ctx)
	if err != nil {
		return Registered{}, err
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Registered{}, fmt.Errorf("workflow %q: %w", name, ErrNotRegistered)
	}
	if err != nil {
		return Registered{}, fmt.Errorf("reading workflow %s from the registry: %w", name, err)
	}
	return DecodeRegistration(e.Value(), e.Revision())
}

// Workflows returns every registered workflow, by name.
func (c *Client) Workflows(ctx context.Context) ([]Registered, error) {
	kv, err := c.bus.Workflows(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("listing the registry: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []Registered
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil { // the current values have all been delivered
				sort.Slice(out, func(i, j int) bool { return out[i].Plan.Name < out[j].Plan.Name })
				return out, nil
			}
			r, err := DecodeRegistration(e.Value(), e.Revision())
			if err != nil {
				return nil, fmt.Errorf("workflow %s: %w", e.Key(), err)
			}
			out = append(out, r)
		}
	}
}

// Unregister removes a workflow from the registry (its runs and versions stay in the database).
// It returns ErrNotRegistered when there is none of that name.
func (c *Client) Unregister(ctx context.Context, name string) error {
	if _, err := c.Workflow(ctx, name); err != nil {
		return err
	}
	kv, err := c.bus.Workflows(ctx)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("deleting workflow %s from the registry: %w", name, err)
	}
	return nil
}

// TriggerParams starts a run of a registered workflow.
type TriggerParams struct {
	Workflow string
	Params   map[string]json.RawMessage
	// IdempotencyKey makes a repeated trigger harmless: it names the same run and starts nothing.
	// Keys are the workflow's own (the submission's key is TriggerKey(Workflow, IdempotencyKey)).
	IdempotencyKey string
	TriggeredBy    string
}

// Triggered is a run started by Trigger.
type Triggered struct {
	RunID string
	Plan  *workflow.Plan
	// Repeat is true when the stream already held this trigger's submission (the same key within
	// the duplicate window): no new run was started.
	Repeat bool
}

// TriggerKey is the submission's idempotency key of a trigger with key: scoped to the workflow,
// so that two workflows may use the same keys.
func TriggerKey(workflowName, key string) string {
	if key == "" {
		return ""
	}
	return "trigger/" + workflowName + "/" + key
}

// Trigger submits a run of the registered workflow's current plan. A repeat with the same
// idempotency key names the same run and starts nothing.
func (c *Client) Trigger(ctx context.Context, p TriggerParams) (Triggered, error) {
	reg, err := c.Workflow(ctx, p.Workflow)
	if err != nil {
		return Triggered{}, err
	}
	runID, dup, err := c.submit(ctx, SubmitParams{Plan: reg.Plan, Params: p.Params,
		IdempotencyKey: TriggerKey(p.Workflow, p.IdempotencyKey), TriggeredBy: p.TriggeredBy})
	return Triggered{RunID: runID, Plan: reg.Plan, Repeat: dup}, err
}
