package storecheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
)

// RunsMaxDefault is how many runs Check reads when it lists them itself.
const RunsMaxDefault = 100_000

// TruncationMarkerPrefix starts the line an executor ships in place of the lines it dropped once an
// attempt's log passed its size limit.
const TruncationMarkerPrefix = "[ork: log truncated"

// ErrViolations is wrapped by Report.Err when a report lists violations.
var ErrViolations = errors.New("store invariants violated")

// Params selects what Check verifies.
type Params struct {
	// RunIDs are the runs to check; empty means every run (the newest RunsMax of them).
	RunIDs []string
	// RunsMax bounds the runs listed when RunIDs is empty; 0 means RunsMaxDefault.
	RunsMax int
	// LogSeqs also checks that each attempt's log seqs are 1..n without holes.
	LogSeqs bool
}

// WithDefaults returns p with zero values replaced by their defaults.
func (p Params) WithDefaults() Params {
	if p.RunsMax == 0 {
		p.RunsMax = RunsMaxDefault
	}
	return p
}

// Validate reports the first bad field.
func (p Params) Validate() error {
	if p.RunsMax < 0 {
		return fmt.Errorf("storecheck: RunsMax %d is negative", p.RunsMax)
	}
	for i, id := range p.RunIDs {
		if id == "" {
			return fmt.Errorf("storecheck: RunIDs[%d] is empty", i)
		}
	}
	return nil
}

// Rule names one invariant.
type Rule string

// The invariants Check verifies.
const (
	RuleRunMissing         Rule = "run_missing"           // a listed run does not exist
	RuleRunNotTerminal     Rule = "run_not_terminal"      // a run is not success, failed or cancelled
	RuleTaskNotTerminal    Rule = "task_not_terminal"     // a terminal run has an unfinished task
	RuleTaskNotSuccess     Rule = "task_not_success"      // a successful run has a task that did not succeed
	RuleRunFailedNoTask    Rule = "run_failed_no_task"    // a failed run has no failed (or lost) task
	RuleTaskSkippedNoCause Rule = "task_skipped_no_cause" // a skipped task has no upstream that did not succeed
	RuleTaskAttempt        Rule = "task_attempt"          // a task's Attempt is not its highest attempt row
	RuleAttemptNotTerminal Rule = "attempt_not_terminal"  // a terminal run has an unfinished attempt row
	RuleLogDuplicate       Rule = "log_duplicate"         // a log line is stored twice
	RuleLogSeq             Rule = "log_seq"               // an attempt's log seqs are not 1..n
)

// Violation is one broken invariant.
type Violation struct {
	Rule    Rule
	RunID   string
	Task    string // "" for run-level rules
	Attempt int    // 0 unless the rule concerns one attempt
	// Message says what is wrong in one sentence.
	Message string
}

// String returns the message.
func (v Violation) String() string { return v.Message }

// Report is what Check found.
type Report struct {
	// Runs, Tasks, Attempts and LogLines count what was read.
	Runs, Tasks, Attempts, LogLines int
	// Truncated is set when Check listed the runs itself and found RunsMax of them: older runs
	// may exist that were not checked.
	Truncated bool
	// Violations lists every broken invariant, run by run.
	Violations []Violation
}

// OK reports whether no invariant was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations of rule the report holds.
func (r *Report) Count(rule Rule) int {
	n := 0
	for _, v := range r.Violations {
		if v.Rule == rule {
			n++
		}
	}
	return n
}

// Err returns nil when the report is OK, else an error wrapping ErrViolations that lists them, one
// per line.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d violations:\n%s", ErrViolations, len(r.Violations), r.String())
}

// String lists the violations, one per line.
func (r *Report) String() string {
	var b strings.Builder
	for i, v := range r.Violations {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(v.Message)
	}
	return b.String()
}

func (r *Report) add(rule Rule, runID, task string, attempt int, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{
		Rule: rule, RunID: runID, Task: task, Attempt: attempt, Message: fmt.Sprintf(format, args...),
	})
}

// Check reads the selected runs through st and returns every broken invariant in the report. The
// error is for failures to read (or bad params), not for violations: see Report.Err.
func Check(ctx context.Context, st store.Store, p Params) (Report, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return Report{}, err
	}
	var rep Report
	var runs []store.Run
	if len(p.RunIDs) == 0 {
		listed, err := st.RunList(ctx, store.RunListParams{Limit: p.RunsMax})
		if err != nil {
			return Report{}, fmt.Errorf("listing runs: %w", err)
		}
		runs, rep.Truncated = listed, len(listed) >= p.RunsMax
	} else {
		for _, id := range p.RunIDs {
			r, err := st.RunGet(ctx, store.RunGetParams{ID: id})
			if errors.Is(err, store.ErrNotFound) {
				rep.add(RuleRunMissing, id, "", 0, "run %s does not exist", id)
				continue
			}
			if err != nil {
				return Report{}, fmt.Errorf("reading run %s: %w", id, err)
			}
			runs = append(runs, r)
		}
	}
	for i := range runs {
		if err := checkRun(ctx, st, p, &runs[i], &rep); err != nil {
			return Report{}, err
		}
	}
	return rep, nil
}

func checkRun(ctx context.Context, st store.Store, p Params, r *store.Run, rep *Report) error {
	rep.Runs++
	terminal := event.IsTerminalRun(r.Status)
	if !terminal {
		rep.add(RuleRunNotTerminal, r.ID, "", 0, "run %s (workflow %s) is %s, not success, failed or cancelled",
			r.ID, r.Workflow, r.Status)
	}
	tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: r.ID})
	if err != nil {
		return fmt.Errorf("listing tasks of run %s: %w", r.ID, err)
	}
	attempts, err := st.AttemptList(ctx, store.AttemptListParams{RunID: r.ID})
	if err != nil {
		return fmt.Errorf("listing attempts of run %s: %w", r.ID, err)
	}
	rep.Tasks += len(tasks)
	rep.Attempts += len(attempts)

	highest := map[string]int{}
	for _, a := range attempts {
		highest[a.Task] = max(highest[a.Task], a.Attempt)
		if terminal && !event.IsTerminalTask(a.Status) {
			rep.add(RuleAttemptNotTerminal, r.ID, a.Task, a.Attempt, "attempt %d of task %s in %s run %s is still %s",
				a.Attempt, a.Task, r.Status, r.ID, a.Status)
		}
	}
	status := make(map[string]string, len(tasks))
	failed := false
	for _, t := range tasks {
		status[t.Name] = t.Status
		failed = failed || t.Status == event.TaskFailed || t.Status == event.TaskLost
	}
	if r.Status == event.RunFailed && !failed {
		rep.add(RuleRunFailedNoTask, r.ID, "", 0, "run %s (workflow %s) failed (%s) but none of its %d tasks failed",
			r.ID, r.Workflow, r.Error, len(tasks))
	}
	for _, t := range tasks {
		if t.Status == event.TaskSkipped && !slices.ContainsFunc(t.DependsOn, func(d string) bool { return status[d] != event.TaskSuccess }) {
			rep.add(RuleTaskSkippedNoCause, r.ID, t.Name, t.Attempt, "task %s of run %s was skipped but every task it depends on (%s) succeeded",
				t.Name, r.ID, strings.Join(t.DependsOn, ", "))
		}
		switch {
		case terminal && !event.IsTerminalTask(t.Status):
			rep.add(RuleTaskNotTerminal, r.ID, t.Name, t.Attempt, "task %s of %s run %s is still %s (attempt %d)",
				t.Name, r.Status, r.ID, t.Status, t.Attempt)
		case r.Status == event.RunSuccess && t.Status != event.TaskSuccess:
			rep.add(RuleTaskNotSuccess, r.ID, t.Name, t.Attempt, "task %s of successful run %s ended %s (attempt %d)",
				t.Name, r.ID, t.Status, t.Attempt)
		}
		if h := highest[t.Name]; t.Attempt != h {
			rep.add(RuleTaskAttempt, r.ID, t.Name, t.Attempt, "task %s of run %s is at attempt %d but its highest attempt row is %d",
				t.Name, r.ID, t.Attempt, h)
		}
	}
	return checkLogs(ctx, st, p, r.ID, rep)
}

type attemptKey struct {
	task    string
	attempt int
}

func checkLogs(ctx context.Context, st store.Store, p Params, runID string, rep *Report) error {
	lines, err := st.LogList(ctx, store.LogListParams{RunID: runID})
	if err != nil {
		return fmt.Errorf("listing log lines of run %s: %w", runID, err)
	}
	rep.LogLines += len(lines)
	seqs := map[attemptKey][]int64{}
	marked := map[attemptKey]bool{}
	var keys []attemptKey
	for _, l := range lines {
		k := attemptKey{l.Task, l.Attempt}
		if _, ok := seqs[k]; !ok {
			keys = append(keys, k)
		}
		seqs[k] = append(seqs[k], l.Seq)
		if strings.HasPrefix(l.Line, TruncationMarkerPrefix) {
			marked[k] = true
		}
	}
	for _, k := range keys {
		s := seqs[k]
		slices.Sort(s)
		for i := 1; i < len(s); i++ {
			if s[i] == s[i-1] && (i == 1 || s[i-2] != s[i]) {
				rep.add(RuleLogDuplicate, runID, k.task, k.attempt, "log line %d of attempt %d of task %s in run %s is stored more than once",
					s[i], k.attempt, k.task, runID)
			}
		}
		if !p.LogSeqs || marked[k] {
			continue
		}
		s = slices.Compact(s)
		if s[0] < 1 {
			rep.add(RuleLogSeq, runID, k.task, k.attempt, "log of attempt %d of task %s in run %s has seq %d, but seqs start at 1",
				k.attempt, k.task, runID, s[0])
			continue
		}
		if first, missing := holes(s); missing > 0 {
			rep.add(RuleLogSeq, runID, k.task, k.attempt, "log of attempt %d of task %s in run %s misses %d lines of seqs 1..%d, the first seq %d",
				k.attempt, k.task, runID, missing, s[len(s)-1], first)
		}
	}
	return nil
}

// holes returns the first seq missing from the sorted, distinct seqs s (all at least 1) in
// 1..max(s), and how many are missing.
func holes(s []int64) (first, missing int64) {
	want := int64(1)
	for _, seq := range s {
		if seq > want {
			if missing == 0 {
				first = want
			}
			missing += seq - want
		}
		want = seq + 1
	}
	return first, missing
}
