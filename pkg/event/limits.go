package event

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Field size limits of an event envelope. DecodeEvent refuses an event over any of them, naming the
// field, so that every consumer refuses it alike (the recorder keeps it as a dead letter) and no
// oversized identifier reaches the database. The limits are far above what Ork itself produces: ids
// are UUIDs, names are at most workflow.MaxNameLength, the executor shortens errors to
// MaxErrorBytes/16 and caps outputs below MaxOutputBytes.
const (
	MaxIDBytes     = 128      // id, run_id
	MaxTokenBytes  = 1024     // type, task, workflow, status, executor, instance, reason, idempotency_key, triggered_by
	MaxErrorBytes  = 1 << 20  // error
	MaxOutputBytes = 16 << 20 // output
	// TaskErrorBytes is what the executor shortens a task's error to before publishing it: room is
	// left for the scheduler to quote it in a run's error.
	TaskErrorBytes = MaxErrorBytes / 16
)

// CheckSizes returns an error naming the first field of e over its limit: what every consumer
// would refuse, for a publisher to refuse first.
func CheckSizes(e *Event) error { return checkSizes(e) }

// checkSizes returns an error naming the first field of e over its limit.
func checkSizes(e *Event) error {
	for _, f := range []struct {
		name string
		size int
		max  int
	}{
		{"id", len(e.ID), MaxIDBytes},
		{"run_id", len(e.RunID), MaxIDBytes},
		{"type", len(e.Type), MaxTokenBytes},
		{"task", len(e.Task), MaxTokenBytes},
		{"workflow", len(e.Workflow), MaxTokenBytes},
		{"status", len(e.Status), MaxTokenBytes},
		{"executor", len(e.Executor), MaxTokenBytes},
		{"instance", len(e.Instance), MaxTokenBytes},
		{"reason", len(e.Reason), MaxTokenBytes},
		{"idempotency_key", len(e.IdempotencyKey), MaxTokenBytes},
		{"triggered_by", len(e.TriggeredBy), MaxTokenBytes},
		{"error", len(e.Error), MaxErrorBytes},
		{"output", len(e.Output), MaxOutputBytes},
		{"params", len(e.Params), MaxOutputBytes},
		{"rerun_of", len(e.RerunOf), MaxIDBytes},
		{"reuse", reuseSize(e.Reuse), MaxOutputBytes},
	} {
		if f.size > f.max {
			return fmt.Errorf("field %s is %s bytes, over its limit of %s", f.name, strconv.Itoa(f.size), strconv.Itoa(f.max))
		}
	}
	return nil
}

// reuseSize is the bytes of a rerun's reused outputs, names included.
func reuseSize(m map[string]json.RawMessage) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}
