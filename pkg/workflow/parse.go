package workflow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ork-go/ork/pkg/schedule"
	"go.yaml.in/yaml/v3"
)

// Fields a workflow and a task may have, in the order the documentation lists them.
var (
	workflowFields = []string{"name", "description", "schedule", "params", "preload", "types", "tasks"}
	taskFields     = []string{"executor", "file", "module", "function", "command", "shell", "depends_on", "timeout",
		"retries", "input_type", "output_type", "inputs", "limits"}
	limitFields   = []string{"memory", "open_files", "processes", "cpu_seconds"}
	bindingFields = []string{"const", "ref"}
)

var (
	moduleRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	yamlErrorRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// parseSchedule reads `schedule:`, a cron string or an object of schedule.Fields; it returns nil
// when there is none to keep, and where params were written.
func (p *parser) parseSchedule(v *yaml.Node) (*schedule.Spec, *yaml.Node) {
	n := p.resolve(v)
	if n == nil {
		return nil, nil
	}
	spec := &schedule.Spec{}
	var paramsNode *yaml.Node
	positions := map[string]*yaml.Node{}
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		spec.Cron = n.Value
		positions["cron"] = n
	case n.Kind == yaml.MappingNode:
		has := false
		for _, e := range p.entries(n, "schedule", "schedule ", schedule.Fields) {
			path := "schedule." + e.key
			positions[e.key] = e.value
			switch e.key {
			case "cron":
				spec.Cron, _ = p.str(e.value, path, "schedule ", "cron")
				has = true
			case "timezone":
				spec.Timezone, _ = p.str(e.value, path, "schedule ", "timezone")
			case "overlap":
				spec.Overlap, _ = p.str(e.value, path, "schedule ", "overlap")
			case "catchup":
				spec.Catchup, _ = p.str(e.value, path, "schedule ", "catchup")
			case "catchup_window":
				spec.CatchupWindow, _ = p.str(e.value, path, "schedule ", "catchup_window")
			case "jitter":
				spec.Jitter, _ = p.str(e.value, path, "schedule ", "jitter")
			case "paused":
				if b := p.resolve(e.value); b != nil && (b.Kind != yaml.ScalarNode || b.ShortTag() != "!!bool" || b.Decode(&spec.Paused) != nil) {
					p.errorf(b, path, "schedule paused must be true or false, not %s", describeNode(b))
				}
			case "params":
				paramsNode = e.value
				spec.Params = p.scheduleParamValues(e.value)
			}
		}
		if !has {
			p.errorf(n, "schedule", "schedule needs cron (a cron expression such as \"0 6 * * *\")")
			return nil, nil
		}
	default:
		p.errorf(n, "schedule", "schedule must be a cron string or an object with cron, not %s", describeNode(n))
		return nil, nil
	}
	for _, pr := range spec.Problems() {
		at := positions[pr.Field]
		if at == nil {
			at = n
		}
		msg := pr.Message
		switch pr.Field {
		case "overlap":
			msg += p.suggest(spec.Overlap, schedule.Overlaps)
		case "catchup":
			msg += p.suggest(spec.Catchup, schedule.Catchups)
		}
		if pr.Field == "cron" && spec.Cron == "" {
			continue // reported by str
		}
		p.errorf(at, "schedule."+pr.Field, "schedule: %s", msg)
	}
	return spec, paramsNode
}

// scheduleParamValues reads schedule.params: a mapping of param name to its value (as JSON).
func (p *parser) scheduleParamValues(v *yaml.Node) map[string]json.RawMessage {
	n := p.resolve(v)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "schedule.params", "schedule params must be a mapping of param name to value, not %s", describeNode(n))
		return nil
	}
	out := map[string]json.RawMessage{}
	for _, e := range p.entries(n, "schedule.params", "schedule params ", nil) {
		val, ok := p.toJSON(e.value, "schedule.params."+e.key, "schedule params ", 0)
		if !ok {
			continue
		}
		data, err := json.Marshal(val)
		if err != nil {
			p.errorf(e.value, "schedule.params."+e.key, "schedule param %s: %v", e.key, err)
			continue
		}
		out[e.key] = data
	}
	return out
}

// Load reads the workflow file at path (at most MaxFileBytes), validates it and compiles it. Task files
// resolve against the file's directory. Errors name the file as path was given.
func Load(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening workflow: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading workflow %s: %w", path, err)
	}
	return Parse(path, data, filepath.Dir(path))
}

// Parse validates and compiles a workflow. filename only labels errors; dir is the directory task
// files resolve against and becomes Plan.Dir (made absolute). On any problem Parse returns a nil plan
// and an ErrorList holding every error found.
func Parse(filename string, data []byte, dir string) (*Plan, error) {
	p := &parser{file: filename, sizes: make(map[*yaml.Node]int)}
	if len(data) > MaxFileBytes {
		p.errorf(nil, "", "file is %d bytes, more than the limit of %d (1 MiB)", len(data), MaxFileBytes)
		return nil, p.errs.err()
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		p.errorf(nil, "", "resolving workflow directory: %v", err)
		return nil, p.errs.err()
	}
	root := p.parseDocument(data)
	if root == nil {
		return nil, p.errs.err()
	}
	w := p.parseWorkflow(root)
	if p.aborted {
		return nil, p.errs.err()
	}
	p.checkFiles(w, absDir)
	p.checkGraph(w)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return compile(w, absDir)
}

// parser holds the state of one Parse call.
type parser struct {
	file string
	errs ErrorList
	// aliasNodes counts YAML nodes reached through aliases; past MaxAliasNodes the parse is aborted.
	aliasNodes int
	sizes      map[*yaml.Node]int
	aborted    bool
	aliases    map[string]*aliasDef
	aliasOrder []string
	// suggestBudget bounds the candidate comparisons spent on "did you mean" hints, so a file full of
	// unknown names among thousands of tasks stays fast; past it, errors come without hints.
	suggestBudget int
}

// suggestionBudget is the number of candidate names compared for hints in one Parse call.
const suggestionBudget = 200_000

// suggest is the package's suggest within the parser's budget.
func (p *parser) suggest(s string, candidates []string) string {
	if p.suggestBudget+len(candidates) > suggestionBudget {
		return ""
	}
	p.suggestBudget += len(candidates)
	return suggest(s, candidates)
}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	// An error about the file as a whole (empty, too large) is placed at its start, so every error
	// reads FILE:LINE:COL.
	e := &Error{File: p.file, Line: 1, Col: 1, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil && n.Line > 0 {
		e.Line, e.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

// parseDocument parses the YAML text and returns its top-level mapping.
func (p *parser) parseDocument(data []byte) (top *yaml.Node) {
	// The YAML library is not ours; should it ever panic on hostile input, report the file as
	// invalid rather than take the caller down.
	defer func() {
		if r := recover(); r != nil {
			p.errorf(nil, "", "invalid YAML: the parser failed: %v", r)
			top = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "workflow file is empty")
		} else {
			p.yamlError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		p.errorf(&next, "", "a workflow file holds one YAML document, found another")
	case !errors.Is(err, io.EOF):
		p.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.errorf(&doc, "", "workflow file is empty")
		return nil
	}
	top = p.resolve(doc.Content[0])
	if top == nil {
		return nil
	}
	if top.Kind != yaml.MappingNode {
		p.errorf(top, "", "a workflow is a mapping with name and tasks, not %s", describeNode(top))
		return nil
	}
	return top
}

func (p *parser) yamlError(err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, msg := range te.Errors {
			p.yamlError(errors.New(msg))
		}
		return
	}
	msg := err.Error()
	if m := yamlErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errs = append(p.errs, &Error{File: p.file, Line: line, Col: 1, Message: "invalid YAML: " + m[2]})
		return
	}
	p.errorf(nil, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// resolve follows an alias, charging the nodes it expands to the alias budget. It returns nil once
// the budget is exhausted; the caller then stops looking at the value.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if p.aborted {
			return nil
		}
		p.aliasNodes += p.size(n.Alias, 0)
		if p.aliasNodes > MaxAliasNodes {
			p.aborted = true
			p.errorf(n, "", "YAML aliases expand to more than %d nodes; refusing to expand further", MaxAliasNodes)
			return nil
		}
		n = n.Alias
	}
	if p.aborted {
		return nil
	}
	return n
}

// size counts the nodes of n with aliases expanded, memoized and saturated just past the budget, so it
// is linear in the document even when aliases nest or refer to themselves.
func (p *parser) size(n *yaml.Node, depth int) int {
	const inProgress = -1
	if n == nil {
		return 0
	}
	switch s, ok := p.sizes[n]; {
	case ok && s == inProgress:
		return MaxAliasNodes + 1 // a node that contains itself expands forever
	case ok:
		return s
	}
	if depth > 10_000 {
		return MaxAliasNodes + 1
	}
	p.sizes[n] = inProgress
	total := 1
	if n.Kind == yaml.AliasNode {
		total = p.size(n.Alias, depth+1)
	}
	for _, c := range n.Content {
		total = min(total+p.size(c, depth+1), MaxAliasNodes+1)
	}
	p.sizes[n] = total
	return total
}

// entry is one key/value pair of a YAML mapping.
type entry struct {
	key   string
	kNode *yaml.Node
	value *yaml.Node
}

// entries returns the pairs of a mapping after rejecting non-string keys, duplicate keys, merge keys
// and, when known is not nil, unknown keys (with a suggestion). who prefixes messages, e.g. `task "a": `.
func (p *parser) entries(n *yaml.Node, path, who string, known []string) []entry {
	var out []entry
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := p.resolve(n.Content[i])
		if k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			p.errorf(k, path, "%skeys must be plain names, not %s", who, describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			p.errorf(k, path, "%sYAML merge keys (<<) are not supported", who)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, join(path, k.Value), "%sduplicate key %q (first defined at line %d)", who, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		if known != nil && !contains(known, k.Value) {
			p.errorf(k, join(path, k.Value), "%sunknown field %q%s", who, k.Value, p.suggest(k.Value, known))
			continue
		}
		out = append(out, entry{key: k.Value, kNode: k, value: n.Content[i+1]})
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describeNode names the shape of a node for messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", truncate(n.Value))
		}
		return truncate(n.Value)
	}
	return "an empty value"
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// str reads a string scalar, reporting anything else.
func (p *parser) str(n *yaml.Node, path, who, field string) (string, bool) {
	n = p.resolve(n)
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, path, "%s%s must be a string, not %s", who, field, describeNode(n))
		return "", false
	}
	return n.Value, true
}

// nonNegInt reads an integer >= 0.
func (p *parser) nonNegInt(n *yaml.Node, path, who, field string) (int, bool) {
	n = p.resolve(n)
	if n == nil {
		return 0, false
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil || v > math.MaxInt32 {
		p.errorf(n, path, "%s%s must be a whole number of %s, not %s", who, field, unitOf(field), describeNode(n))
		return 0, false
	}
	if v < 0 {
		p.errorf(n, path, "%s%s must not be negative", who, field)
		return 0, false
	}
	return v, true
}

func unitOf(field string) string {
	switch field {
	case "timeout", "cpu_seconds":
		return "seconds"
	case "open_files":
		return "files"
	case "processes":
		return "processes"
	}
	return "attempts"
}

// parseLimits reads a task's limits: {memory: 512MiB, open_files: 256, processes: 64,
// cpu_seconds: 30}; memory is bytes or a number with KiB, MiB or GiB.
func (p *parser) parseLimits(n *yaml.Node, path, who string) *Limits {
	body := p.resolve(n)
	if body == nil {
		return nil
	}
	if body.Kind != yaml.MappingNode {
		p.errorf(body, path, "%slimits must be a mapping of memory, open_files, processes and cpu_seconds, not %s", who, describeNode(body))
		return nil
	}
	l := &Limits{}
	for _, f := range p.entries(body, path, who+"limits: ", limitFields) {
		fpath := path + "." + f.key
		switch f.key {
		case "memory":
			v := p.resolve(f.value)
			if v == nil {
				break
			}
			bytes, ok := ParseMemory(v.Value)
			if v.Kind != yaml.ScalarNode || !ok {
				p.errorf(v, fpath, "%slimits: memory must be a size in bytes or with KiB, MiB or GiB (512MiB), not %s", who, describeNode(v))
				break
			}
			l.MemoryBytes = bytes
		case "open_files":
			l.OpenFiles, _ = p.nonNegInt(f.value, fpath, who+"limits: ", f.key)
		case "processes":
			l.Processes, _ = p.nonNegInt(f.value, fpath, who+"limits: ", f.key)
		case "cpu_seconds":
			l.CPUSeconds, _ = p.nonNegInt(f.value, fpath, who+"limits: ", f.key)
		}
	}
	if *l == (Limits{}) {
		return nil
	}
	return l
}

// ParseMemory reads a positive size: a whole number of bytes, or one followed by KiB, MiB or GiB.
func ParseMemory(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, false
	}
	return n * mult, true
}

// parsed is the workflow as read from YAML, with the positions later checks report at.
type parsed struct {
	name, description string
	schedule          *schedule.Spec
	scheduleParams    *yaml.Node // where schedule.params was written, checked after params
	preload           []string
	params            []Param
	paramsEntry       *entry // where params was written, parsed after types
	tasks             []*ptask
	byName            map[string]*ptask
}

type ptask struct {
	Task
	keyNode   *yaml.Node
	fileNode  *yaml.Node
	depNodes  []*yaml.Node
	inputsKey *yaml.Node
	inputs    []pinput
	inputType *yaml.Node
	executor  string // as written, before normalization; "" if missing or invalid
}

type pinput struct {
	name    string
	keyNode *yaml.Node
	value   *yaml.Node // the const value or ref string node
	binding Binding
}

func (p *parser) parseWorkflow(top *yaml.Node) *parsed {
	w := &parsed{byName: make(map[string]*ptask)}
	var tasksEntry, typesEntry *entry
	has := map[string]bool{}
	for _, e := range p.entries(top, "", "", workflowFields) {
		has[e.key] = true
		switch e.key {
		case "name":
			if s, ok := p.str(e.value, "name", "", "name"); ok {
				if msg := workflowNameProblem(s); msg != "" {
					p.errorf(e.value, "name", "workflow name %q %s", truncate(s), msg)
				}
				w.name = s
			}
		case "description":
			if s, ok := p.str(e.value, "description", "", "description"); ok {
				w.description = s
			}
		case "preload":
			w.preload = p.parsePreload(e.value)
		case "schedule":
			w.schedule, w.scheduleParams = p.parseSchedule(e.value)
		case "params":
			w.paramsEntry = &e
		case "types":
			typesEntry = &e
		case "tasks":
			tasksEntry = &e
		}
	}
	if !has["name"] {
		p.errorf(top, "name", "missing name: every workflow needs a name")
	}
	if typesEntry != nil {
		p.parseTypeAliases(typesEntry.value)
	}
	if w.paramsEntry != nil {
		w.params = p.parseParams(w.paramsEntry.value)
	}
	if w.schedule != nil && (w.scheduleParams != nil || len(w.params) > 0) {
		check := Plan{Name: w.name, Params: w.params}
		if _, err := check.BindParams(w.schedule.Params); err != nil {
			at := w.scheduleParams
			if at == nil {
				at = top
			}
			p.errorf(at, "schedule.params", "schedule params: %s", strings.TrimPrefix(err.Error(), "workflow "+w.name+": "))
		}
	}
	if tasksEntry == nil {
		p.errorf(top, "tasks", "missing tasks: a workflow needs at least one task")
		return w
	}
	tasks := p.resolve(tasksEntry.value)
	if tasks == nil {
		return w
	}
	if tasks.Kind != yaml.MappingNode {
		p.errorf(tasks, "tasks", "tasks must be a mapping of task name to task, not %s", describeNode(tasks))
		return w
	}
	if len(tasks.Content) == 0 {
		p.errorf(tasks, "tasks", "tasks must define at least one task")
		return w
	}
	if n := len(tasks.Content) / 2; n > MaxTasks {
		p.errorf(tasks, "tasks", "workflow has %d tasks, more than the limit of %d", n, MaxTasks)
		return w
	}
	for _, e := range p.entries(tasks, "tasks", "", nil) {
		path := "tasks." + e.key
		if msg := nameProblem(e.key); msg != "" {
			p.errorf(e.kNode, path, "task name %q %s", truncate(e.key), msg)
		}
		t := p.parseTask(e, path)
		if t == nil {
			continue
		}
		t.Index = len(w.tasks)
		w.tasks = append(w.tasks, t)
		w.byName[t.Name] = t
		if p.aborted {
			return w
		}
	}
	return w
}

func (p *parser) parseTask(e entry, path string) *ptask {
	t := &ptask{keyNode: e.kNode}
	t.Name = e.key
	t.TimeoutSeconds = DefaultTimeoutSeconds
	who := fmt.Sprintf("task %q: ", truncate(e.key))
	body := p.resolve(e.value)
	if body == nil {
		return nil
	}
	if body.Kind != yaml.MappingNode {
		p.errorf(body, path, "%sa task is a mapping with at least an executor, not %s", who, describeNode(body))
		return t
	}
	var shape taskShape
	fieldNodes := map[string]*yaml.Node{}
	var commandNode *yaml.Node
	var commandPath string
	shellFlag := false
	for _, f := range p.entries(body, path, who, taskFields) {
		fpath := path + "." + f.key
		fieldNodes[f.key] = f.kNode
		switch f.key {
		case "executor":
			s, ok := p.str(f.value, fpath, who, "executor")
			if !ok {
				break
			}
			exec, known := normalizeExecutor(s)
			if !known {
				p.errorf(p.resolve(f.value), fpath, "%sunknown executor %q%s (known: python, process, shell, noop, sleep)",
					who, truncate(s), suggest(s, executorNames))
				break
			}
			t.Executor, t.executor = exec, s
		case "file":
			if s, ok := p.str(f.value, fpath, who, "file"); ok {
				t.File, t.fileNode = s, p.resolve(f.value)
				shape.file = true
			}
		case "module":
			if s, ok := p.str(f.value, fpath, who, "module"); ok {
				if !moduleRE.MatchString(s) || len(s) > 256 {
					p.errorf(p.resolve(f.value), fpath, "%smodule %q is not a dotted Python module name", who, truncate(s))
				}
				t.Module = s
				shape.module = true
			}
		case "function":
			if s, ok := p.str(f.value, fpath, who, "function"); ok {
				if msg := nameProblem(s); msg != "" {
					p.errorf(p.resolve(f.value), fpath, "%sfunction %q %s", who, truncate(s), msg)
				}
				t.Function = s
				shape.function = true
			}
		case "command":
			commandNode, commandPath = f.value, fpath
			shape.command = true
		case "shell":
			n := p.resolve(f.value)
			if n == nil {
				break
			}
			if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&shellFlag) != nil {
				p.errorf(n, fpath, "%sshell must be true or false, not %s", who, describeNode(n))
			}
			shape.shell = true
		case "depends_on":
			p.parseDependsOn(t, f.value, fpath, who)
		case "timeout":
			if v, ok := p.nonNegInt(f.value, fpath, who, "timeout"); ok {
				t.TimeoutSeconds = v
			}
		case "retries":
			if v, ok := p.nonNegInt(f.value, fpath, who, "retries"); ok {
				t.Retries = v
			}
		case "input_type":
			t.inputType = p.resolve(f.value)
			t.InputType = p.parseType(f.value, fpath, who+"input_type: ", 0)
			if t.InputType != nil && t.InputType.Kind != KindObject {
				p.errorf(t.inputType, fpath, "%sinput_type must be an object type ({name: type, ...}), not %s", who, t.InputType)
				t.InputType = nil
			}
		case "output_type":
			t.OutputType = p.parseType(f.value, fpath, who+"output_type: ", 0)
		case "inputs":
			t.inputsKey = f.kNode
			p.parseInputs(t, f.value, fpath, who)
		case "limits":
			t.Limits = p.parseLimits(f.value, fpath, who)
		}
	}
	if _, ok := fieldNodes["executor"]; !ok {
		p.errorf(e.kNode, path+".executor", "%smissing executor (python, process, shell, noop or sleep)", who)
	}
	if n, ok := fieldNodes["limits"]; ok && (t.Executor == ExecutorNoop || t.Executor == ExecutorSleep) {
		p.errorf(n, path+".limits", "%slimits apply to tasks that run processes (python, process, shell), not %s", who, t.Executor)
	}
	// A shell task (executor shell, or a process task with shell: true) runs its command string with
	// /bin/sh -c, so pipes, $VAR and globs work; the compiled argv says so.
	t.Shell = t.executor == "shell" || shellFlag
	shape.shellTask = t.Shell
	if commandNode != nil {
		if t.Shell {
			if n := p.resolve(commandNode); n != nil && n.Kind == yaml.SequenceNode {
				p.errorf(n, commandPath, "%sthe command of a shell task is one string, run with %s -c, not a list: "+
					"write it as a string, or use executor: process to run a list as it is", who, ShellPath)
			} else if script, ok := p.str(commandNode, commandPath, who, "the command of a shell task"); ok {
				if strings.TrimSpace(script) == "" {
					p.errorf(p.resolve(commandNode), commandPath, "%scommand is empty", who)
				}
				t.Command = []string{ShellPath, "-c", script}
			}
		} else {
			t.Command = p.parseCommand(commandNode, commandPath, who)
		}
	}
	if t.Executor != "" {
		shape.executor = t.Executor
		for _, fp := range executorProblems(shape) {
			at := fieldNodes[fp.field]
			if at == nil {
				at = e.kNode
			}
			p.errorf(at, path+"."+fp.field, "%s%s", who, fp.message)
		}
	}
	if t.Executor == ExecutorPython && t.Function == "" {
		t.Function = "main"
	}
	return t
}

// parsePreload reads the workflow's preload: a list of Python modules the warm interpreter imports
// once for its python tasks.
func (p *parser) parsePreload(v *yaml.Node) []string {
	n := p.resolve(v)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "preload", "preload must be a list of Python module names, not %s", describeNode(n))
		return nil
	}
	var out []string
	for _, item := range n.Content {
		item = p.resolve(item)
		if item == nil {
			return out
		}
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			p.errorf(item, "preload", "preload entries must be Python module names, not %s", describeNode(item))
			continue
		}
		if msg := preloadProblem(item.Value); msg != "" {
			p.errorf(item, "preload", "preload %q %s", truncate(item.Value), msg)
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

func (p *parser) parseCommand(v *yaml.Node, path, who string) []string {
	n := p.resolve(v)
	if n == nil {
		return nil
	}
	var argv []string
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		words, err := splitCommand(n.Value)
		if err != nil {
			p.errorf(n, path, "%scommand %s", who, err)
			return nil
		}
		argv = words
	case n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			item = p.resolve(item)
			if item == nil {
				return nil
			}
			if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" {
				p.errorf(item, path, "%scommand arguments must be strings, not %s", who, describeNode(item))
				continue
			}
			argv = append(argv, item.Value)
		}
	default:
		p.errorf(n, path, "%scommand must be a string or a list of arguments, not %s", who, describeNode(n))
		return nil
	}
	if len(argv) == 0 {
		p.errorf(n, path, "%scommand is empty", who)
	} else if argv[0] == "" {
		p.errorf(n, path, "%scommand has an empty program name", who)
	}
	return argv
}

func (p *parser) parseDependsOn(t *ptask, v *yaml.Node, path, who string) {
	n := p.resolve(v)
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "%sdepends_on must be a list of task names, not %s", who, describeNode(n))
		return
	}
	for _, item := range n.Content {
		item = p.resolve(item)
		if item == nil {
			return
		}
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			p.errorf(item, path, "%sdepends_on entries must be task names, not %s", who, describeNode(item))
			continue
		}
		t.DependsOn = append(t.DependsOn, item.Value)
		t.depNodes = append(t.depNodes, item)
	}
}

func (p *parser) parseInputs(t *ptask, v *yaml.Node, path, who string) {
	n := p.resolve(v)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "%sinputs must be a mapping of input name to {const: value} or {ref: tasks.<task>.output}, not %s",
			who, describeNode(n))
		return
	}
	t.Inputs = make(map[string]Binding)
	for _, e := range p.entries(n, path, who+"inputs: ", nil) {
		ipath := path + "." + e.key
		iwho := fmt.Sprintf("%sinputs.%s: ", who, truncate(e.key))
		if msg := nameProblem(e.key); msg != "" {
			p.errorf(e.kNode, ipath, "%sinput name %q %s", who, truncate(e.key), msg)
		}
		body := p.resolve(e.value)
		if body == nil {
			return
		}
		if body.Kind != yaml.MappingNode {
			p.errorf(body, ipath, "%san input is {const: value} or {ref: tasks.<task>.output}, not %s", iwho, describeNode(body))
			continue
		}
		fields := p.entries(body, ipath, iwho, bindingFields)
		if len(fields) != 1 {
			if len(body.Content) == 0 || len(fields) > 1 {
				p.errorf(body, ipath, "%sgive exactly one of const or ref", iwho)
			}
			continue
		}
		in := pinput{name: e.key, keyNode: e.kNode, value: p.resolve(fields[0].value)}
		if in.value == nil {
			return
		}
		if fields[0].key == "const" {
			val, ok := p.toJSON(fields[0].value, ipath+".const", iwho, 0)
			if !ok {
				continue
			}
			raw, err := json.Marshal(val)
			if err != nil {
				p.errorf(in.value, ipath+".const", "%sconst cannot be encoded as JSON: %v", iwho, err)
				continue
			}
			in.binding.Const = raw
		} else {
			s, ok := p.str(fields[0].value, ipath+".ref", iwho, "ref")
			if !ok {
				continue
			}
			ref, ok := parseRef(s)
			if !ok {
				p.errorf(in.value, ipath+".ref", "%sref %q must look like tasks.<task>.output[.<field>...] or params.<param>[.<field>...]", iwho, truncate(s))
				continue
			}
			in.binding.Ref = ref
		}
		t.Inputs[e.key] = in.binding
		t.inputs = append(t.inputs, in)
	}
}

// parseRef parses tasks.<task>.output[.field...] and params.<param>[.field...].
func parseRef(s string) (*Ref, bool) {
	parts := strings.Split(s, ".")
	if len(parts) >= 2 && parts[0] == "params" {
		for _, part := range parts[1:] {
			if nameProblem(part) != "" {
				return nil, false
			}
		}
		return &Ref{Param: parts[1], Path: parts[2:len(parts):len(parts)]}, true
	}
	if len(parts) < 3 || parts[0] != "tasks" || parts[2] != "output" {
		return nil, false
	}
	for i, part := range parts {
		if i != 0 && i != 2 && nameProblem(part) != "" {
			return nil, false
		}
	}
	ref := &Ref{Task: parts[1]}
	if len(parts) > 3 {
		ref.Path = parts[3:]
	}
	return ref, true
}

// toJSON converts a YAML value to a value json.Marshal encodes canonically.
func (p *parser) toJSON(v *yaml.Node, path, who string, depth int) (any, bool) {
	n := p.resolve(v)
	if n == nil {
		return nil, false
	}
	if depth > maxCheckDepth {
		p.errorf(n, path, "%sconst is nested deeper than %d levels", who, maxCheckDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return p.scalarJSON(n, path, who)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			x, ok := p.toJSON(c, path, who, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, x)
		}
		return out, true
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for _, e := range p.entries(n, path, who, nil) {
			x, ok := p.toJSON(e.value, path, who, depth+1)
			if !ok {
				return nil, false
			}
			out[e.key] = x
		}
		return out, len(out) == len(n.Content)/2
	}
	p.errorf(n, path, "%sconst has an unsupported YAML value", who)
	return nil, false
}

func (p *parser) scalarJSON(n *yaml.Node, path, who string) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!str", "!!timestamp":
		return n.Value, true
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b, true
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i, true
		}
		var u uint64
		if n.Decode(&u) == nil {
			return u, true
		}
		p.errorf(n, path, "%sconst %s is out of the 64-bit integer range", who, truncate(n.Value))
		return nil, false
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			if math.IsInf(f, 0) || math.IsNaN(f) {
				p.errorf(n, path, "%sconst %s has no JSON representation", who, n.Value)
				return nil, false
			}
			return f, true
		}
	}
	p.errorf(n, path, "%sconst %s with YAML tag %s is not supported", who, describeNode(n), n.ShortTag())
	return nil, false
}

// checkFiles checks each task file: relative, inside dir, opened through os.Root so symlinks cannot
// lead outside, and a regular file.
func (p *parser) checkFiles(w *parsed, dir string) {
	var root *os.Root
	for _, t := range w.tasks {
		if t.fileNode == nil {
			continue
		}
		path := "tasks." + t.Name + ".file"
		who := fmt.Sprintf("task %q: ", t.Name)
		switch {
		case t.File == "":
			p.errorf(t.fileNode, path, "%sfile is empty", who)
			continue
		case filepath.IsAbs(t.File) || strings.HasPrefix(t.File, "/"):
			p.errorf(t.fileNode, path, "%sfile %q must be relative to the workflow's directory", who, truncate(t.File))
			continue
		case !filepath.IsLocal(t.File):
			p.errorf(t.fileNode, path, "%sfile %q escapes the workflow's directory", who, truncate(t.File))
			continue
		}
		t.File = filepath.Clean(t.File)
		if root == nil {
			r, err := os.OpenRoot(dir)
			if err != nil {
				p.errorf(t.fileNode, path, "%sfile %q cannot be checked: opening the workflow directory: %v", who, t.File, err)
				continue
			}
			defer r.Close()
			root = r
		}
		info, err := root.Stat(t.File)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.errorf(t.fileNode, path, "%sfile %q does not exist", who, t.File)
		case err != nil && strings.Contains(err.Error(), "escapes"):
			p.errorf(t.fileNode, path, "%sfile %q escapes the workflow's directory through a symbolic link", who, t.File)
		case err != nil:
			p.errorf(t.fileNode, path, "%sfile %q cannot be read: %v", who, t.File, errors.Unwrap(err))
		case !info.Mode().IsRegular():
			p.errorf(t.fileNode, path, "%sfile %q is not a regular file", who, t.File)
		case t.Executor == ExecutorProcess && len(t.Command) == 0 && info.Mode().Perm()&0o111 == 0:
			p.errorf(t.fileNode, path, "%sfile %q is run as the command but is not executable (chmod +x %s, or give a command)",
				who, t.File, t.File)
		}
	}
}

// checkGraph runs the rules across tasks (graph.go) and places each error at the YAML node of the
// part it is about.
func (p *parser) checkGraph(w *parsed) {
	tasks := make([]*Task, len(w.tasks))
	for i, t := range w.tasks {
		tasks[i] = &t.Task
	}
	graphCheck{
		tasks:  tasks,
		params: w.params,
		inputOrder: func(i int) []string {
			names := make([]string, len(w.tasks[i].inputs))
			for k, in := range w.tasks[i].inputs {
				names[k] = in.name
			}
			return names
		},
		suggest: p.suggest,
		report: func(at site, path, format string, args ...any) {
			p.errorf(w.tasks[at.task].node(at), path, format, args...)
		},
	}.run()
}

// node returns the YAML node of the part of t that at names.
func (t *ptask) node(at site) *yaml.Node {
	switch at.kind {
	case siteDep:
		return t.depNodes[at.dep]
	case siteInputKey, siteInputValue:
		for _, in := range t.inputs {
			if in.name == at.input {
				if at.kind == siteInputKey {
					return in.keyNode
				}
				return in.value
			}
		}
	case siteInputs:
		if t.inputsKey != nil {
			return t.inputsKey
		}
		return t.inputType
	case siteSleepInputs:
		if t.inputsKey != nil {
			return t.inputsKey
		}
	}
	return t.keyNode
}

// compile turns a checked workflow into a Plan in topological order, with its hash.
func compile(w *parsed, dir string) (*Plan, error) {
	deps := make([][]int, len(w.tasks))
	for i, t := range w.tasks {
		for _, d := range t.DependsOn {
			deps[i] = append(deps[i], w.byName[d].Index)
		}
	}
	plan := &Plan{Name: w.name, Description: w.description, Schedule: w.schedule, Params: w.params}
	for _, i := range topoOrder(deps) {
		t := w.tasks[i].Task
		if t.Executor == ExecutorPython && len(w.preload) > 0 {
			t.Preload = slices.Clone(w.preload)
		}
		plan.Tasks = append(plan.Tasks, t)
	}
	if err := plan.rehash(); err != nil {
		return nil, err
	}
	plan.Dir = dir
	return plan, nil
}

// rehash sets Hash from the plan's canonical encoding (everything but Dir and Hash).
func (p *Plan) rehash() error {
	dir := p.Dir
	p.Dir, p.Hash = "", ""
	raw, err := json.Marshal(p)
	p.Dir = dir
	if err != nil {
		return fmt.Errorf("encoding plan for its hash: %w", err)
	}
	sum := sha256.Sum256(raw)
	p.Hash = hex.EncodeToString(sum[:])
	return nil
}

// WithBundle returns a copy of the plan that runs from the bundle named hash (pkg/bundle) instead
// of a folder on the executors' disk; the bundle is part of the version, so its hash changes.
func (p *Plan) WithBundle(hash string) (*Plan, error) {
	q := *p
	q.Bundle = hash
	if err := q.rehash(); err != nil {
		return nil, err
	}
	return &q, nil
}
