package store

import (
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// The SQL stores write a batch's task events folded: one task row update per task and one attempt
// row upsert per attempt, whatever the number of events, with the result the events would have had
// applied one by one. These two folds are that rule, shared by every store that folds.

// TaskFold is the chain of a task's events in a batch that would each advance the task row when
// applied in order: only its last element and the start of that element's attempt matter.
type TaskFold struct {
	Final  *event.Event
	Status string
	Start  *event.Event // the last running event of the chain
}

// Add folds the next event of the task, in batch order.
func (f *TaskFold) Add(e *event.Event, status string) {
	if f.Final != nil && !TaskAdvances(f.Final.Attempt, TaskRank(f.Status, f.Final.Reason), e.Attempt, TaskRank(status, e.Reason)) {
		return
	}
	f.Final, f.Status = e, status
	if status == event.TaskRunning {
		f.Start = e
	}
}

// StartedAt is the start of the final event's attempt, when the batch holds it.
func (f *TaskFold) StartedAt() *time.Time {
	if f.Start != nil && f.Start.Attempt == f.Final.Attempt {
		return &f.Start.Time
	}
	return nil
}

// AttemptFold folds a batch's events of one attempt: the first event of the highest rank sets the
// status and terminal fields; timestamps and instance are the first seen of each.
type AttemptFold struct {
	Final        *event.Event
	Status       string
	DispatchedAt *time.Time
	StartedAt    *time.Time
	Instance     string
}

// Add folds the next event of the attempt, in batch order.
func (f *AttemptFold) Add(e *event.Event, status string) {
	if f.Final == nil || TaskRank(status, e.Reason) > TaskRank(f.Status, f.Final.Reason) {
		f.Final, f.Status = e, status
	}
	switch {
	case status == event.TaskDispatched && f.DispatchedAt == nil:
		f.DispatchedAt = &e.Time
	case status == event.TaskRunning && f.StartedAt == nil:
		f.StartedAt = &e.Time
	}
	if f.Instance == "" {
		f.Instance = e.Instance
	}
}
