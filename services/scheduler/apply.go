package scheduler

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// Defaults of Backoff.
const (
	BackoffBaseDefault   = time.Second
	BackoffMaxDefault    = time.Minute
	BackoffJitterDefault = 0.2
)

// Backoff is the retry delay policy: attempt N+1 of a task whose attempt N failed waits
// Base·2^(N-1), at most Max, minus a random share of at most Jitter of it.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64 // 0..1
}

// WithDefaults returns the policy with zero fields set to their defaults.
func (b Backoff) WithDefaults() Backoff {
	if b.Base == 0 {
		b.Base = BackoffBaseDefault
	}
	if b.Max == 0 {
		b.Max = BackoffMaxDefault
	}
	return b
}

// Validate names the first bad field.
func (b Backoff) Validate() error {
	switch {
	case b.Base <= 0:
		return fmt.Errorf("backoff: Base must be positive, got %s", b.Base)
	case b.Max < b.Base:
		return fmt.Errorf("backoff: Max (%s) must be at least Base (%s)", b.Max, b.Base)
	case b.Jitter < 0 || b.Jitter > 1:
		return fmt.Errorf("backoff: Jitter must be within 0..1, got %g", b.Jitter)
	}
	return nil
}

// Delay returns the wait before the attempt after failed attempt n (1-based). seed chooses the
// jitter, so the same seed always gives the same delay.
func (b Backoff) Delay(n int, seed uint64) time.Duration {
	d := b.Max
	if shift := n - 1; shift >= 0 && shift < 62 && b.Base <= b.Max>>shift {
		d = b.Base << shift
	}
	if b.Jitter > 0 {
		u := float64(seed>>11) / (1 << 53)
		d -= time.Duration(float64(d) * b.Jitter * u)
	}
	return d
}

// Seed returns the jitter seed of an event: a hash of its id.
func Seed(ev *event.Event) uint64 {
	h := fnv.New64a()
	h.Write([]byte(ev.ID))
	return h.Sum64()
}

// Outcome says what Apply did with an event.
type Outcome uint8

// Outcomes.
const (
	// Applied: the state changed.
	Applied Outcome = iota + 1
	// Duplicate: the event was applied before; Replay returns what it caused.
	Duplicate
	// Stale: the event names an older attempt, a task that was not dispatched, or a finished run.
	Stale
	// Ignored: the event is not one the scheduler acts on, or names an unknown task.
	Ignored
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Dispatch is a task to publish on ORK_TASKS. The service resolves the task's input bindings.
type Dispatch struct {
	Task      int // position in the plan
	Attempt   int
	NotBefore *time.Time // set on retries
}

// Output is a task output to keep because a downstream binding references it.
type Output struct {
	Task  int
	Value json.RawMessage
}

// Commands is what an event causes. Events carry no id: the publisher assigns one.
type Commands struct {
	Outcome    Outcome
	Reason     string // why the event was not applied
	Dispatches []Dispatch
	Events     []event.Event
	Outputs    []Output
	// Finished is set when this event ended the run (a run.finished event is in Events).
	Finished bool
}

// Apply applies one event to the state of a run and returns what it causes. It handles
// run.submitted, task.succeeded and task.failed; other types are Ignored. It changes st only when it
// returns Applied. It reads no clock (now is the event's handling time) and does no I/O. The cost is
// proportional to the tasks the event touches, not to the size of the run, except on the first call
// after a decode, which derives the per-task count of unmet dependencies.
func Apply(g *Graph, st *RunState, ev *event.Event, now time.Time, b Backoff) (Commands, error) {
	if st.Compacted || st.Status.Terminal() {
		if ev.Type == event.TypeRunSubmitted {
			return Commands{Outcome: Duplicate, Reason: "run already submitted"}, nil
		}
		return Commands{Outcome: Stale, Reason: "run finished"}, nil
	}
	if len(st.Tasks) != g.Len() {
		return Commands{}, fmt.Errorf("run state has %d tasks, plan %d", len(st.Tasks), g.Len())
	}
	a := applier{g: g, st: st, ev: ev, now: now}
	switch ev.Type {
	case event.TypeRunSubmitted:
		if st.Status != RunNew {
			return Commands{Outcome: Duplicate, Reason: "run already submitted"}, nil
		}
		a.submit()
	case event.TypeTaskSucceeded, event.TypeTaskFailed:
		i, c, ok := fence(g, st, ev)
		if !ok {
			return c, nil
		}
		if ev.Type == event.TypeTaskSucceeded {
			a.succeed(i)
		} else {
			a.fail(i, b)
		}
	default:
		return Commands{Outcome: Ignored, Reason: "not a scheduling event"}, nil
	}
	a.cmds.Outcome = Applied
	a.finishIfDone()
	return a.cmds, nil
}

// fence finds the event's task and decides whether the event applies to its current attempt.
func fence(g *Graph, st *RunState, ev *event.Event) (int, Commands, bool) {
	if st.Status == RunNew {
		return 0, Commands{Outcome: Stale, Reason: "run not started"}, false
	}
	i, ok := g.Index(ev.Task)
	if !ok {
		return 0, Commands{Outcome: Ignored, Reason: "unknown task"}, false
	}
	ts := st.Tasks[i]
	switch {
	case ts.Status.Terminal() && ev.Attempt == ts.Attempt:
		return i, Commands{Outcome: Duplicate, Reason: "task already " + ts.Status.String()}, false
	case ts.Status == TaskDispatched && ev.Attempt == ts.Attempt:
		return i, Commands{}, true
	case ts.Status == TaskDispatched && ev.Attempt == ts.Attempt-1 && ev.Type == event.TypeTaskFailed:
		return i, Commands{Outcome: Duplicate, Reason: "attempt already retried"}, false
	case ts.Status == TaskPending:
		return i, Commands{Outcome: Stale, Reason: "task not dispatched"}, false
	}
	return i, Commands{Outcome: Stale, Reason: fmt.Sprintf("attempt %d is not current (%d)", ev.Attempt, ts.Attempt)}, false
}

type applier struct {
	g    *Graph
	st   *RunState
	ev   *event.Event
	now  time.Time
	cmds Commands
}

func (a *applier) event(typ string, task string, attempt int) *event.Event {
	a.cmds.Events = append(a.cmds.Events, event.Event{
		V: event.SchemaVersion, Type: typ, Time: a.now, RunID: a.ev.RunID, Task: task, Attempt: attempt,
	})
	return &a.cmds.Events[len(a.cmds.Events)-1]
}

func (a *applier) dispatch(i, attempt int, notBefore *time.Time) {
	a.st.set(i, TaskState{Status: TaskDispatched, Attempt: attempt})
	a.cmds.Dispatches = append(a.cmds.Dispatches, Dispatch{Task: i, Attempt: attempt, NotBefore: notBefore})
	e := a.event(event.TypeTaskDispatched, a.g.Task(i).Name, attempt)
	e.Executor = a.g.Task(i).Executor
	e.NotBefore = notBefore
}

func (a *applier) submit() {
	a.st.Status = RunActive
	a.event(event.TypeRunStarted, "", 0).Workflow = a.g.Plan.Name
	for _, r := range a.g.roots {
		a.dispatch(int(r), 1, nil)
	}
}

func (a *applier) succeed(i int) {
	st := a.st
	ensureWaiting(a.g, st)
	st.set(i, TaskState{Status: TaskSucceeded, Attempt: st.Tasks[i].Attempt})
	st.Remaining--
	if a.g.referenced[i] {
		out := a.ev.Output
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		a.cmds.Outputs = append(a.cmds.Outputs, Output{Task: i, Value: out})
	}
	for _, s := range a.g.succ[i] {
		st.waiting[s]--
		if st.waiting[s] == 0 && st.Tasks[s].Status == TaskPending {
			a.dispatch(int(s), 1, nil)
		}
	}
}

func (a *applier) fail(i int, b Backoff) {
	st := a.st
	attempt := st.Tasks[i].Attempt
	if attempt <= a.g.Task(i).Retries {
		nb := a.now.Add(b.Delay(attempt, Seed(a.ev)))
		a.dispatch(i, attempt+1, &nb)
		return
	}
	st.set(i, TaskState{Status: TaskFailed, Attempt: attempt})
	st.Remaining--
	name := a.g.Task(i).Name
	if st.FailedTask == 0 {
		st.FailedTask = i + 1
		st.Error = failureText(name, a.ev)
	}
	reason := fmt.Sprintf("upstream task %q failed", name)
	stack := []int32{int32(i)}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, s := range a.g.succ[x] {
			if st.Tasks[s].Status != TaskPending {
				continue
			}
			st.set(int(s), TaskState{Status: TaskSkipped, Attempt: st.Tasks[s].Attempt})
			st.Remaining--
			e := a.event(event.TypeTaskSkipped, a.g.Task(int(s)).Name, 0)
			e.Reason = event.ReasonUpstreamFailed
			e.Error = reason
			stack = append(stack, s)
		}
	}
}

func (a *applier) finishIfDone() {
	if a.st.Remaining > 0 {
		return
	}
	a.st.Status = RunSucceeded
	if a.st.FailedTask > 0 {
		a.st.Status = RunFailed
	}
	a.cmds.Finished = true
	a.finished()
}

func (a *applier) finished() {
	e := a.event(event.TypeRunFinished, "", 0)
	e.Workflow = a.g.Plan.Name
	e.Status = a.st.Status.String()
	e.Error = a.st.Error
}

// failureText is the run error for a task that failed for good: `task "load" failed: <its error>`.
func failureText(task string, ev *event.Event) string {
	detail := ev.Error
	if detail == "" {
		detail = ev.Reason
	}
	s := fmt.Sprintf("task %q failed", task)
	if detail != "" {
		s += ": " + detail
	}
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen]
	}
	return s
}

// ensureWaiting derives the count of unmet dependencies of every task.
func ensureWaiting(g *Graph, st *RunState) {
	if len(st.waiting) == len(st.Tasks) {
		return
	}
	w := make([]int32, len(st.Tasks))
	for i, deps := range g.deps {
		for _, d := range deps {
			if st.Tasks[d].Status != TaskSucceeded {
				w[i]++
			}
		}
	}
	st.waiting = w
}

// Replay returns what an already applied event caused, judged from the current state, so that a
// redelivered message can publish it again: the dispatches it made that are still outstanding, the
// skips it caused, and run.finished once the run is over. Publishing them twice is harmless: their
// deduplication ids are fixed. g may be nil for a compacted run.
func Replay(g *Graph, st *RunState, ev *event.Event, now time.Time, b Backoff) Commands {
	a := applier{g: g, st: st, ev: ev, now: now, cmds: Commands{Outcome: Duplicate}}
	if st.Compacted || g == nil || len(st.Tasks) != g.Len() {
		if st.Status.Terminal() && g != nil {
			a.finished()
		} else if st.Status.Terminal() {
			e := a.event(event.TypeRunFinished, "", 0)
			e.Status = st.Status.String()
			e.Error = st.Error
		}
		return a.cmds
	}
	redispatch := func(i int, nb *time.Time) {
		a.cmds.Dispatches = append(a.cmds.Dispatches, Dispatch{Task: i, Attempt: st.Tasks[i].Attempt, NotBefore: nb})
		e := a.event(event.TypeTaskDispatched, g.Task(i).Name, st.Tasks[i].Attempt)
		e.Executor = g.Task(i).Executor
		e.NotBefore = nb
	}
	switch ev.Type {
	case event.TypeRunSubmitted:
		if st.Status == RunNew {
			return Commands{Outcome: Duplicate}
		}
		a.event(event.TypeRunStarted, "", 0).Workflow = g.Plan.Name
		for _, r := range g.roots {
			if st.Tasks[r] == (TaskState{Status: TaskDispatched, Attempt: 1}) {
				redispatch(int(r), nil)
			}
		}
	case event.TypeTaskSucceeded:
		i, ok := g.Index(ev.Task)
		if !ok || st.Tasks[i] != (TaskState{Status: TaskSucceeded, Attempt: ev.Attempt}) {
			break
		}
		for _, s := range g.succ[i] {
			if st.Tasks[s] == (TaskState{Status: TaskDispatched, Attempt: 1}) {
				redispatch(int(s), nil)
			}
		}
	case event.TypeTaskFailed:
		i, ok := g.Index(ev.Task)
		if !ok {
			break
		}
		switch st.Tasks[i] {
		case TaskState{Status: TaskDispatched, Attempt: ev.Attempt + 1}:
			nb := now.Add(b.Delay(ev.Attempt, Seed(ev)))
			redispatch(i, &nb)
		case TaskState{Status: TaskFailed, Attempt: ev.Attempt}:
			stack := []int32{int32(i)}
			reason := fmt.Sprintf("upstream task %q failed", ev.Task)
			seen := make(map[int32]bool)
			for len(stack) > 0 {
				x := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				for _, s := range g.succ[x] {
					if st.Tasks[s].Status != TaskSkipped || seen[s] {
						continue
					}
					seen[s] = true
					e := a.event(event.TypeTaskSkipped, g.Task(int(s)).Name, 0)
					e.Reason = event.ReasonUpstreamFailed
					e.Error = reason
					stack = append(stack, s)
				}
			}
		}
	}
	if st.Status.Terminal() {
		a.finished()
	}
	return a.cmds
}
