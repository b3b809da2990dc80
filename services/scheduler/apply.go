package scheduler

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/retry"
)

// Defaults of Backoff.
const (
	BackoffBaseDefault   = time.Second
	BackoffMaxDefault    = time.Minute
	BackoffJitterDefault = 0.2
)

// Backoff is the retry delay policy of failed tasks: attempt N+1 of a task whose attempt N failed
// waits Base·2^(N-1), at most Max, minus a random share of at most Jitter of it.
type Backoff = retry.Backoff

// backoffWithDefaults returns b with zero fields set to their defaults.
func backoffWithDefaults(b Backoff) Backoff {
	if b.Base == 0 {
		b.Base = BackoffBaseDefault
	}
	if b.Max == 0 {
		b.Max = BackoffMaxDefault
	}
	return b
}

// Seed returns the jitter seed of an event: a hash of its id.
func Seed(ev *event.Event) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ev.ID)) // a hash.Hash never fails to write
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

// MaxLostAttemptsDefault is the default of Policy.MaxLostAttempts (and Config.MaxLostAttempts).
const MaxLostAttemptsDefault = 3

// Policy is what Apply needs besides the event: the retry delays and the cap on lost attempts.
type Policy struct {
	Backoff Backoff
	// MaxLostAttempts bounds the attempts of one task that are re-dispatched because they were lost
	// (reason lost). They do not use up the task's retries; the next lost attempt fails the task for
	// good.
	MaxLostAttempts int
}

// Apply applies one event to the state of a run and returns what it causes. It handles
// run.submitted, task.succeeded, task.failed and the control requests (run.cancel_requested,
// run.pause_requested, run.resume_requested); other types are Ignored. It changes st only when it
// returns Applied. It reads no clock (now is the event's handling time) and does no I/O. The cost is
// proportional to the tasks the event touches, not to the size of the run, except on the first call
// after a decode, which derives the per-task count of unmet dependencies, and on cancel and resume,
// which visit every task.
//
// A pause or resume request that finds the run already paused or running is a Duplicate that still
// carries its answer (run.paused, run.resumed), so a client waiting for one gets it.
func Apply(g *Graph, st *RunState, ev *event.Event, now time.Time, p Policy) (Commands, error) {
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
			a.fail(i, p)
		}
	case event.TypeRunCancelRequested, event.TypeRunPauseRequested, event.TypeRunResumeRequested:
		if c, ok := a.control(); !ok {
			return c, nil
		}
	case typeRedrive:
		if st.Status == RunNew {
			return Commands{Outcome: Stale, Reason: "run not started"}, nil
		}
		if !a.redrive() {
			return Commands{Outcome: Duplicate, Reason: "nothing to re-drive"}, nil
		}
	default:
		return Commands{Outcome: Ignored, Reason: "not a scheduling event"}, nil
	}
	a.cmds.Outcome = Applied
	a.finishIfDone()
	return a.cmds, nil
}

// control applies a control request. It reports false, with the commands to return, when the
// request changes nothing.
func (a *applier) control() (Commands, bool) {
	st, ev := a.st, a.ev
	if st.Status == RunNew {
		return Commands{Outcome: Stale, Reason: "run not started"}, false
	}
	if ev.Seq != 0 && ev.Seq <= st.ControlSeq {
		a.cmds = Commands{Outcome: Duplicate, Reason: "control request already applied"}
		a.answerCurrent()
		return a.cmds, false
	}
	switch {
	case ev.Type == event.TypeRunPauseRequested && st.Status == RunPaused:
		a.cmds = Commands{Outcome: Duplicate, Reason: "run already paused"}
		a.answer(event.TypeRunPaused)
		return a.cmds, false
	case ev.Type == event.TypeRunResumeRequested && st.Status == RunActive:
		a.cmds = Commands{Outcome: Duplicate, Reason: "run not paused"}
		a.answer(event.TypeRunResumed)
		return a.cmds, false
	}
	if ev.Seq > st.ControlSeq {
		st.ControlSeq = ev.Seq
	}
	switch ev.Type {
	case event.TypeRunCancelRequested:
		a.cancel()
	case event.TypeRunPauseRequested:
		st.Status = RunPaused
		a.answer(event.TypeRunPaused)
	case event.TypeRunResumeRequested:
		st.Status = RunActive
		a.answer(event.TypeRunResumed)
		for i := range st.Tasks {
			if ts := st.Tasks[i]; ts.Status == TaskHeld {
				a.dispatch(i, ts.Attempt, nil)
			}
		}
	}
	return Commands{}, true
}

// answer adds the answer to the control request being applied, with an id derived from the
// request's, so that answering the same request again publishes the same message.
func (a *applier) answer(typ string) {
	e := a.event(typ, "", 0)
	e.ID = event.AnswerID(a.ev.ID, typ)
	e.Workflow = a.g.Plan.Name
}

// answerCurrent answers a pause or resume request with the run's current state (a cancel request is
// answered by run.finished, which Replay publishes).
func (a *applier) answerCurrent() {
	switch {
	case a.ev.Type == event.TypeRunPauseRequested && a.st.Status == RunPaused:
		a.answer(event.TypeRunPaused)
	case a.ev.Type == event.TypeRunResumeRequested && a.st.Status == RunActive:
		a.answer(event.TypeRunResumed)
	}
}

// cancel ends the run: every task that is not over is cancelled at its last dispatched attempt (0
// if it never ran), and run.finished (cancelled) follows.
func (a *applier) cancel() {
	st := a.st
	for i := range st.Tasks {
		ts := st.Tasks[i]
		if ts.Status.Terminal() {
			continue
		}
		attempt := ts.Attempt
		if ts.Status == TaskHeld {
			attempt-- // the held attempt was never dispatched
		}
		st.set(i, TaskState{Status: TaskCancelled, Attempt: attempt, Lost: ts.Lost})
		st.Remaining--
		e := a.event(event.TypeTaskCancelled, a.g.Task(i).Name, attempt)
		e.Reason = event.ReasonCancelled
		e.Error = "run cancelled"
	}
	st.Status = RunCancelled
	msg := "run cancelled"
	if a.ev.Error != "" {
		msg += ": " + a.ev.Error
	}
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	st.Error = msg
	a.cmds.Finished = true
	a.finished()
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

// dispatch makes attempt of task i outstanding, or holds it while the run is paused.
func (a *applier) dispatch(i, attempt int, notBefore *time.Time) {
	lost := a.st.Tasks[i].Lost
	if a.st.Status == RunPaused {
		a.st.set(i, TaskState{Status: TaskHeld, Attempt: attempt, Lost: lost})
		return
	}
	a.st.set(i, TaskState{Status: TaskDispatched, Attempt: attempt, Lost: lost})
	a.cmds.Dispatches = append(a.cmds.Dispatches, Dispatch{Task: i, Attempt: attempt, NotBefore: notBefore})
	e := a.event(event.TypeTaskDispatched, a.g.Task(i).Name, attempt)
	e.Executor = a.g.Task(i).Executor
	e.NotBefore = notBefore
}

func (a *applier) submit() {
	a.st.Status = RunActive
	a.event(event.TypeRunStarted, "", 0).Workflow = a.g.Plan.Name
	if len(a.g.reuse) == 0 {
		for _, r := range a.g.roots {
			a.dispatch(int(r), 1, nil)
		}
		return
	}
	// A rerun: the reused tasks are succeeded at attempt 0, with the outputs of the run it reruns;
	// every other task whose dependencies are all reused starts.
	for i := range a.g.Len() {
		out, ok := a.g.reuse[i]
		if !ok {
			continue
		}
		a.st.set(i, TaskState{Status: TaskSucceeded})
		a.st.Remaining--
		if a.g.referenced[i] {
			a.cmds.Outputs = append(a.cmds.Outputs, Output{Task: i, Value: out})
		}
		a.reused(i)
	}
	ensureWaiting(a.g, a.st)
	for i := range a.g.Len() {
		if a.st.Tasks[i].Status == TaskPending && a.st.waiting[i] == 0 {
			a.dispatch(i, 1, nil)
		}
	}
}

// reused publishes the success of reused task i: attempt 0, reason reused, its reused output.
func (a *applier) reused(i int) {
	e := a.event(event.TypeTaskSucceeded, a.g.Task(i).Name, 0)
	e.Reason = event.ReasonReused
	e.Output = a.g.reuse[i]
}

func (a *applier) succeed(i int) {
	st := a.st
	ensureWaiting(a.g, st)
	st.set(i, TaskState{Status: TaskSucceeded, Attempt: st.Tasks[i].Attempt, Lost: st.Tasks[i].Lost})
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

// fail applies the failure of the current attempt of task i: a lost attempt runs again at once
// (up to MaxLostAttempts), another failure is retried after its backoff while retries are left, and
// otherwise the task fails for good and its downstream tasks are skipped.
func (a *applier) fail(i int, p Policy) {
	st := a.st
	ts := st.Tasks[i]
	lost := a.ev.Reason == event.ReasonLost
	if lost && ts.Lost < p.MaxLostAttempts {
		st.set(i, TaskState{Status: TaskDispatched, Attempt: ts.Attempt, Lost: ts.Lost + 1})
		a.dispatch(i, ts.Attempt+1, nil)
		return
	}
	if used := ts.Attempt - ts.Lost; !lost && used <= a.g.Task(i).Retries {
		nb := a.now.Add(p.Backoff.Delay(used, Seed(a.ev)))
		a.dispatch(i, ts.Attempt+1, &nb)
		return
	}
	attempt := ts.Attempt
	cause := a.ev
	if lost {
		// The failed state counts this lost attempt too: a task failed with more lost attempts than
		// the cap is one the scheduler gave up on (Replay re-publishes the verdict).
		ts.Lost++
		cause = a.giveUp(i, p)
	}
	st.set(i, TaskState{Status: TaskFailed, Attempt: attempt, Lost: ts.Lost})
	st.Remaining--
	name := a.g.Task(i).Name
	if st.FailedTask == 0 {
		st.FailedTask = i + 1
		st.Error = failureText(name, cause)
	}
	a.skipBelow(i)
}

// giveUp publishes the verdict on task i, whose current attempt was lost after MaxLostAttempts
// lost attempts were already run again: task.failed with reason max_lost at that attempt. The task
// is failed for good and a late result of the attempt is ignored (fence); the stores rank the
// verdict above any result of its attempt (store.TaskRankGivenUp), so they end the same whichever
// arrives first. Its id derives from the loss's, so a replay re-publishes the same message.
func (a *applier) giveUp(i int, p Policy) *event.Event {
	attempt := a.st.Tasks[i].Attempt
	e := a.event(event.TypeTaskFailed, a.g.Task(i).Name, attempt)
	e.ID = event.AnswerID(a.ev.ID, event.ReasonMaxLost)
	e.Reason = event.ReasonMaxLost
	detail := a.ev.Error
	if detail == "" {
		detail = "its executor stopped responding"
	}
	e.Error = fmt.Sprintf("attempt %d was lost (%s) after %d lost attempts were run again, the most allowed: giving up",
		attempt, detail, p.MaxLostAttempts)
	if len(e.Error) > maxErrorLen {
		e.Error = e.Error[:maxErrorLen]
	}
	return e
}

// skipBelow skips every pending task downstream of task i, which did not succeed, and reports
// whether it skipped any.
func (a *applier) skipBelow(i int) bool {
	st := a.st
	reason := fmt.Sprintf("upstream task %q failed", a.g.Task(i).Name)
	skipped := false
	stack := []int32{int32(i)}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, s := range a.g.succ[x] {
			if st.Tasks[s].Status != TaskPending {
				continue
			}
			st.set(int(s), TaskState{Status: TaskSkipped, Attempt: st.Tasks[s].Attempt, Lost: st.Tasks[s].Lost})
			st.Remaining--
			e := a.event(event.TypeTaskSkipped, a.g.Task(int(s)).Name, 0)
			e.Reason = event.ReasonUpstreamFailed
			e.Error = reason
			stack = append(stack, s)
			skipped = true
		}
	}
	return skipped
}

// typeRedrive is the type of the internal event by which the reconciler re-drives a stalled run
// (reconcile.go). It never travels on the bus: the reconciler hands it to the run's queue.
const typeRedrive = "ork.internal.redrive"

// redrive re-derives what a run should be doing from its stored state alone, and reports whether
// that changed anything: the count of tasks left is recounted, a pending task below one that did
// not succeed is skipped, a pending task whose dependencies all succeeded is dispatched, a task held
// in a run that is no longer paused is dispatched, and (in Apply) a run with nothing left finishes.
// A state that only Apply ever wrote gives it nothing to do; it is the net for a defect that left a
// run with nothing in flight, so that the run still ends.
func (a *applier) redrive() bool {
	st, g := a.st, a.g
	changed := false
	remaining := 0
	for _, ts := range st.Tasks {
		if !ts.Status.Terminal() {
			remaining++
		}
	}
	if remaining != st.Remaining {
		st.Remaining, changed = remaining, true
	}
	for i, ts := range st.Tasks {
		if ts.Status == TaskFailed || ts.Status == TaskSkipped || ts.Status == TaskCancelled {
			if a.skipBelow(i) {
				changed = true
			}
		}
	}
	st.waiting = nil
	ensureWaiting(g, st)
	for i, ts := range st.Tasks {
		switch {
		case ts.Status == TaskPending && st.waiting[i] == 0:
			a.dispatch(i, 1, nil)
			changed = true
		case ts.Status == TaskHeld && st.Status == RunActive:
			a.dispatch(i, ts.Attempt, nil)
			changed = true
		}
	}
	if remaining == 0 {
		changed = true // finishIfDone ends it
	}
	return changed
}

// finishIfDone ends a run, running or paused, whose tasks are all over.
func (a *applier) finishIfDone() {
	if a.st.Remaining > 0 || a.st.Status.Terminal() {
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
// skips it caused, the cancellations of a cancelled run, the answer to a pause or resume that still
// holds, and run.finished once the run is over. Publishing them twice is harmless: their
// deduplication ids are fixed. g may be nil for a compacted run.
func Replay(g *Graph, st *RunState, ev *event.Event, now time.Time, p Policy) Commands {
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
		if len(g.reuse) == 0 {
			for _, r := range g.roots {
				if st.Tasks[r] == (TaskState{Status: TaskDispatched, Attempt: 1}) {
					redispatch(int(r), nil)
				}
			}
			break
		}
		// A rerun: what submit did, from the state: the reused tasks' successes, and the first
		// attempts of the tasks that only depend on reused ones.
		for i := range g.Len() {
			if _, ok := g.reuse[i]; ok && st.Tasks[i] == (TaskState{Status: TaskSucceeded}) {
				a.reused(i)
			}
		}
		for i := range g.Len() {
			if st.Tasks[i] != (TaskState{Status: TaskDispatched, Attempt: 1}) {
				continue
			}
			onlyReused := true
			for _, d := range g.deps[i] {
				if _, ok := g.reuse[int(d)]; !ok {
					onlyReused = false
				}
			}
			if onlyReused {
				redispatch(i, nil)
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
		ts := st.Tasks[i]
		switch {
		case ts.Status == TaskDispatched && ts.Attempt == ev.Attempt+1 && ev.Reason == event.ReasonLost:
			redispatch(i, nil)
		case ts.Status == TaskDispatched && ts.Attempt == ev.Attempt+1:
			nb := now.Add(p.Backoff.Delay(ev.Attempt-ts.Lost, Seed(ev)))
			redispatch(i, &nb)
		case ts.Status == TaskFailed && ts.Attempt == ev.Attempt:
			if ev.Reason == event.ReasonLost && ts.Lost > p.MaxLostAttempts {
				a.giveUp(i, p)
			}
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
	case event.TypeRunCancelRequested:
		if st.Status != RunCancelled {
			break
		}
		for i, ts := range st.Tasks {
			if ts.Status == TaskCancelled {
				e := a.event(event.TypeTaskCancelled, g.Task(i).Name, ts.Attempt)
				e.Reason = event.ReasonCancelled
				e.Error = "run cancelled"
			}
		}
	case event.TypeRunPauseRequested, event.TypeRunResumeRequested:
		a.answerCurrent()
	}
	if st.Status.Terminal() {
		a.finished()
	}
	return a.cmds
}
