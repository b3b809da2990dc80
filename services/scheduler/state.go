package scheduler

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/ork-go/ork/pkg/event"
)

// RunStatus is the scheduler's view of a run.
type RunStatus uint8

// Run statuses. A run is New until its submission is applied.
const (
	RunNew RunStatus = iota
	RunActive
	RunSucceeded
	RunFailed
	// RunPaused holds new dispatches: tasks that become ready wait for a resume.
	RunPaused
	// RunCancelled is the end of a cancelled run.
	RunCancelled
)

// String returns the event status name (event.Run*).
func (s RunStatus) String() string {
	switch s {
	case RunNew:
		return event.RunPending
	case RunActive:
		return event.RunRunning
	case RunSucceeded:
		return event.RunSuccess
	case RunFailed:
		return event.RunFailed
	case RunPaused:
		return event.RunPaused
	case RunCancelled:
		return event.RunCancelled
	}
	return fmt.Sprintf("run_status(%d)", uint8(s))
}

// Terminal reports whether the run is over.
func (s RunStatus) Terminal() bool { return s == RunSucceeded || s == RunFailed || s == RunCancelled }

// Started reports whether the run's submission was applied and it is not over: running or paused.
func (s RunStatus) Started() bool { return s == RunActive || s == RunPaused }

// TaskStatus is the scheduler's view of a task. Dispatched covers running too: the scheduler does
// not consume task.started.
type TaskStatus uint8

// Task statuses.
const (
	TaskPending TaskStatus = iota
	TaskDispatched
	TaskSucceeded
	TaskFailed
	TaskSkipped
	// TaskCancelled: the run was cancelled before the task ended.
	TaskCancelled
	// TaskHeld: the task became ready (or due for another attempt) while the run was paused. Its
	// Attempt is the attempt to dispatch on resume.
	TaskHeld
	taskStatusCount
)

// String returns the event status name (event.Task*).
func (s TaskStatus) String() string {
	switch s {
	case TaskPending:
		return event.TaskPending
	case TaskDispatched:
		return event.TaskDispatched
	case TaskSucceeded:
		return event.TaskSuccess
	case TaskFailed:
		return event.TaskFailed
	case TaskSkipped:
		return event.TaskSkipped
	case TaskCancelled:
		return event.TaskCancelled
	case TaskHeld:
		return event.TaskPaused
	}
	return fmt.Sprintf("task_status(%d)", uint8(s))
}

// Terminal reports whether the task is over for good.
func (s TaskStatus) Terminal() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskSkipped || s == TaskCancelled
}

// TaskState is one task of a run: its status, its current attempt (1-based; 0 before the first
// dispatch) and how many of its attempts were lost. Lost attempts do not use up retries: the retries
// used are Attempt-1-Lost.
type TaskState struct {
	Status  TaskStatus
	Attempt int
	Lost    int
}

// RunState is the compact state of one run: a status and an attempt per task, in plan order, and
// what run.finished needs. It holds no outputs. Its encoding is versioned (StateVersion).
type RunState struct {
	Status RunStatus
	Tasks  []TaskState
	// Remaining counts tasks that are not terminal.
	Remaining int
	// FailedTask is the 1-based position of the first task that failed for good, 0 if none.
	FailedTask int
	// Error is the run's error once a task failed for good or the run was cancelled.
	Error string
	// ControlSeq is the ORK_EVENTS sequence of the last control request applied (pause, resume,
	// cancel). A redelivered request at or below it is a duplicate, so a replayed pause cannot
	// undo a later resume.
	ControlSeq uint64
	// Compacted marks the tombstone of a finished run: Tasks is empty and only Status and Error
	// are kept.
	Compacted bool

	// waiting counts, per task, the dependencies that have not succeeded. It is derived from Tasks
	// on first use and never encoded.
	waiting []int32
	// groups holds, ascending, the positions where a run of equal TaskStates starts. It is kept up
	// to date by set once built, so encoding costs the number of groups, not of tasks.
	groups   []int32
	groupsOK bool
}

// set changes one task, keeping the group index current.
func (st *RunState) set(i int, ts TaskState) {
	st.Tasks[i] = ts
	if !st.groupsOK {
		return
	}
	st.fixBoundary(i)
	if i+1 < len(st.Tasks) {
		st.fixBoundary(i + 1)
	}
}

func (st *RunState) fixBoundary(i int) {
	starts := i == 0 || st.Tasks[i] != st.Tasks[i-1]
	k, found := slices.BinarySearch(st.groups, int32(i))
	switch {
	case starts && !found:
		st.groups = slices.Insert(st.groups, k, int32(i))
	case !starts && found:
		st.groups = slices.Delete(st.groups, k, k+1)
	}
}

func (st *RunState) buildGroups() {
	st.groups = st.groups[:0]
	for i := range st.Tasks {
		if i == 0 || st.Tasks[i] != st.Tasks[i-1] {
			st.groups = append(st.groups, int32(i))
		}
	}
	st.groupsOK = true
}

// NewRunState returns the state of a run of g before its submission is applied.
func NewRunState(g *Graph) *RunState {
	st := &RunState{Tasks: make([]TaskState, g.Len()), Remaining: g.Len()}
	st.buildGroups()
	return st
}

// StateVersion is the version byte that starts an encoded RunState. Version 1 (without the control
// sequence and the lost counts) is still decoded.
const StateVersion = 2

const stateVersion1 = 1

// maxErrorLen caps RunState.Error so the state stays small whatever a task prints.
const maxErrorLen = 2048

const flagCompacted = 1

// statusHasLost marks, in a group's status byte, that a lost count follows its attempt.
const statusHasLost = 0x80

// maxStateTasks bounds the task count a decoder accepts, so a corrupt value cannot exhaust memory.
const maxStateTasks = 1 << 22

// ErrStateEncoding is returned when an encoded state cannot be decoded.
var ErrStateEncoding = errors.New("bad run state encoding")

// MarshalBinary encodes the state: version, run status, flags, task count, failed task, control
// sequence, error, then
// the tasks run-length encoded as (count, status, attempt[, lost]) groups; the lost count is only
// there, flagged in the status byte, when it is not zero. Runs of tasks in the same status
// and attempt are the common case (a chain's done prefix, a wide run's pending tail), so a large run
// usually encodes in a few dozen bytes and at worst in about three bytes per task.
func (st *RunState) MarshalBinary() ([]byte, error) {
	return st.AppendBinary(make([]byte, 0, 32+len(st.Error)))
}

// AppendBinary appends the encoding of MarshalBinary to b.
func (st *RunState) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if st.Compacted {
		flags |= flagCompacted
	}
	b = append(b, StateVersion, byte(st.Status), flags)
	b = binary.AppendUvarint(b, uint64(len(st.Tasks)))
	b = binary.AppendUvarint(b, uint64(st.FailedTask))
	b = binary.AppendUvarint(b, st.ControlSeq)
	b = binary.AppendUvarint(b, uint64(len(st.Error)))
	b = append(b, st.Error...)
	if !st.groupsOK {
		st.buildGroups()
	}
	for k, start := range st.groups {
		end := int32(len(st.Tasks))
		if k+1 < len(st.groups) {
			end = st.groups[k+1]
		}
		t := st.Tasks[start]
		b = binary.AppendUvarint(b, uint64(end-start))
		if t.Lost == 0 {
			b = append(b, byte(t.Status))
			b = binary.AppendUvarint(b, uint64(t.Attempt))
			continue
		}
		b = append(b, byte(t.Status)|statusHasLost)
		b = binary.AppendUvarint(b, uint64(t.Attempt))
		b = binary.AppendUvarint(b, uint64(t.Lost))
	}
	return b, nil
}

// UnmarshalBinary decodes a state encoded by MarshalBinary.
func (st *RunState) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	version := d.byte()
	if version != StateVersion && version != stateVersion1 {
		if d.err != nil {
			return d.err
		}
		return fmt.Errorf("run state version %d: %w", version, ErrStateEncoding)
	}
	status := RunStatus(d.byte())
	flags := d.byte()
	n := d.uvarint()
	failed := d.uvarint()
	var controlSeq uint64
	if version != stateVersion1 {
		controlSeq = d.uvarint()
	}
	errLen := d.uvarint()
	errText := d.bytes(errLen)
	if d.err != nil {
		return d.err
	}
	if status > RunCancelled || n > maxStateTasks || failed > n {
		return fmt.Errorf("run state header: %w", ErrStateEncoding)
	}
	tasks := make([]TaskState, 0, n)
	remaining := 0
	for uint64(len(tasks)) < n {
		count := d.uvarint()
		sb := d.byte()
		ts := TaskStatus(sb &^ statusHasLost)
		attempt := d.uvarint()
		var lost uint64
		if sb&statusHasLost != 0 {
			if version == stateVersion1 {
				return fmt.Errorf("run state task group: %w", ErrStateEncoding)
			}
			lost = d.uvarint()
		}
		if d.err != nil {
			return d.err
		}
		if count == 0 || count > n-uint64(len(tasks)) || ts >= taskStatusCount || attempt > 1<<31 || lost > attempt {
			return fmt.Errorf("run state task group: %w", ErrStateEncoding)
		}
		for range count {
			tasks = append(tasks, TaskState{Status: ts, Attempt: int(attempt), Lost: int(lost)})
		}
		if !ts.Terminal() {
			remaining += int(count)
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("run state: %d trailing bytes: %w", len(d.b), ErrStateEncoding)
	}
	*st = RunState{
		Status:     status,
		Tasks:      tasks,
		Remaining:  remaining,
		FailedTask: int(failed),
		Error:      string(errText),
		ControlSeq: controlSeq,
		Compacted:  flags&flagCompacted != 0,
	}
	st.buildGroups()
	return nil
}

// Tombstone returns the compacted form of a finished run.
func (st *RunState) Tombstone() *RunState {
	return &RunState{Status: st.Status, Error: st.Error, ControlSeq: st.ControlSeq, Compacted: true}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = fmt.Errorf("run state truncated: %w", ErrStateEncoding)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("run state varint: %w", ErrStateEncoding)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("run state truncated: %w", ErrStateEncoding)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
