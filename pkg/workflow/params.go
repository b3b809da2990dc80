package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Run parameters: a workflow declares them under params (each {type, default, description}),
// tasks bind them with {ref: params.NAME[.field...]}, and each run gives their values, checked
// against the declared types before anything is submitted (BindParams).

// paramFields are the fields of one declared parameter.
var paramFields = []string{"type", "default", "description"}

// MaxParams bounds the parameters a workflow declares.
const MaxParams = 256

// parseParams reads the params mapping.
func (p *parser) parseParams(v *yaml.Node) []Param {
	n := p.resolve(v)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "params", "params must be a mapping of parameter name to {type, default, description}, not %s", describeNode(n))
		return nil
	}
	if len(n.Content)/2 > MaxParams {
		p.errorf(n, "params", "workflow declares %d params, more than the limit of %d", len(n.Content)/2, MaxParams)
		return nil
	}
	var out []Param
	for _, e := range p.entries(n, "params", "", nil) {
		path := "params." + e.key
		who := fmt.Sprintf("param %q: ", truncate(e.key))
		if msg := nameProblem(e.key); msg != "" {
			p.errorf(e.kNode, path, "param name %q %s", truncate(e.key), msg)
			continue
		}
		body := p.resolve(e.value)
		if body == nil {
			return out
		}
		if body.Kind != yaml.MappingNode {
			p.errorf(body, path, "%sa param is {type: T, default: value, description: text}, not %s", who, describeNode(body))
			continue
		}
		prm := Param{Name: e.key}
		var defNode *yaml.Node
		for _, f := range p.entries(body, path, who, paramFields) {
			switch f.key {
			case "type":
				prm.Type = p.parseType(f.value, path+".type", who+"type: ", 0)
			case "default":
				defNode = f.value
			case "description":
				prm.Description, _ = p.str(f.value, path+".description", who, "description")
			}
		}
		if prm.Type == nil {
			if !slices.ContainsFunc(body.Content, func(k *yaml.Node) bool { return k.Value == "type" }) {
				p.errorf(body, path+".type", "%smissing type: every param declares its type (str, int, date, ...)", who)
			}
			continue
		}
		if defNode != nil {
			val, ok := p.toJSON(defNode, path+".default", who, 0)
			if !ok {
				continue
			}
			raw, err := json.Marshal(val)
			if err != nil {
				p.errorf(defNode, path+".default", "%sdefault cannot be encoded as JSON: %v", who, err)
				continue
			}
			if err := prm.Type.CheckJSON(raw); err != nil {
				p.errorf(defNode, path+".default", "%sdefault does not fit %s: %s", who, prm.Type, strings.TrimPrefix(err.Error(), "$: "))
				continue
			}
			prm.Default = raw
		}
		out = append(out, prm)
	}
	return out
}

// Param returns the declared parameter name, or nil.
func (p *Plan) Param(name string) *Param {
	for i := range p.Params {
		if p.Params[i].Name == name {
			return &p.Params[i]
		}
	}
	return nil
}

// paramNames lists the declared parameter names.
func (p *Plan) paramNames() []string {
	names := make([]string, len(p.Params))
	for i, prm := range p.Params {
		names[i] = prm.Name
	}
	return names
}

// ParamError is a run's parameters that do not fit the workflow: every problem, each naming its
// parameter.
type ParamError struct {
	Workflow string
	Problems []string
}

func (e *ParamError) Error() string {
	return "workflow " + e.Workflow + ": " + strings.Join(e.Problems, "; ")
}

// BindParams checks a run's parameter values against the declared params and returns the run's
// whole parameter object: every declared parameter, given or defaulted. A value not declared, a
// value that does not fit its type, or a parameter with no default left out is a *ParamError.
func (p *Plan) BindParams(given map[string]json.RawMessage) (json.RawMessage, error) {
	perr := &ParamError{Workflow: p.Name}
	for _, name := range sortedKeys(given) {
		if p.Param(name) == nil {
			hint := " (the workflow declares none)"
			if len(p.Params) > 0 {
				hint = " (declared: " + strings.Join(p.paramNames(), ", ") + ")" + suggest(name, p.paramNames())
			}
			perr.Problems = append(perr.Problems, fmt.Sprintf("unknown param %q%s", truncate(name), hint))
		}
	}
	out := make(map[string]json.RawMessage, len(p.Params))
	for _, prm := range p.Params {
		v, ok := given[prm.Name]
		if !ok {
			if prm.Default == nil {
				perr.Problems = append(perr.Problems, fmt.Sprintf("param %q is required (%s)", prm.Name, prm.Type))
				continue
			}
			v = prm.Default
		}
		if err := prm.Type.CheckJSON(v); err != nil {
			perr.Problems = append(perr.Problems, fmt.Sprintf("param %q: %s does not fit %s: %s",
				prm.Name, truncate(string(bytes.TrimSpace(v))), prm.Type, strings.TrimPrefix(err.Error(), "$: ")))
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			perr.Problems = append(perr.Problems, fmt.Sprintf("param %q: %v", prm.Name, err))
			continue
		}
		out[prm.Name] = buf.Bytes()
	}
	if len(perr.Problems) > 0 {
		return nil, perr
	}
	if len(out) == 0 {
		return nil, nil
	}
	return json.Marshal(out)
}

// ParseParamArgs reads NAME=VALUE arguments (ork run --param, ork trigger --param) for the plan's
// params: a value of a text type (str, date and times) is taken as written, any other as JSON (42,
// true, [1, 2], {"a": 1}). A JSON string ("...") is accepted for text types too.
func (p *Plan) ParseParamArgs(args []string) (map[string]json.RawMessage, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(args))
	var problems []string
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			problems = append(problems, fmt.Sprintf("--param %q: want NAME=VALUE", truncate(a)))
			continue
		}
		if _, dup := out[name]; dup {
			problems = append(problems, fmt.Sprintf("--param %s: given twice", truncate(name)))
			continue
		}
		prm := p.Param(name)
		switch {
		case prm != nil && prm.Type.isText() && !(strings.HasPrefix(value, `"`) && json.Valid([]byte(value))):
			raw, _ := json.Marshal(value)
			out[name] = raw
		case json.Valid([]byte(value)):
			out[name] = json.RawMessage(value)
		case prm == nil:
			raw, _ := json.Marshal(value) // BindParams says it is unknown
			out[name] = raw
		default:
			problems = append(problems, fmt.Sprintf("--param %s=%s: not a JSON value, as a %s must be", truncate(name), truncate(value), prm.Type))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// isText is whether values of t are JSON strings.
func (t *Type) isText() bool {
	switch t.Kind {
	case KindStr, KindDate, KindDatetimeNoTZ, KindDatetimeTZ, KindDatetimeUTC:
		return true
	}
	return false
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// validParams checks the declared params of a plan that did not come from Parse, reporting each
// problem through add, and returns the well-formed ones (a bad one is reported once, not again by
// every ref to it).
func (p *Plan) validParams(add func(path, format string, args ...any)) []Param {
	if len(p.Params) > MaxParams {
		add("params", "workflow declares %d params, more than the limit of %d", len(p.Params), MaxParams)
		return nil
	}
	var out []Param
	seen := make(map[string]bool, len(p.Params))
	for _, prm := range p.Params {
		path := "params." + prm.Name
		switch {
		case nameProblem(prm.Name) != "":
			add(path, "param name %q %s", truncate(prm.Name), nameProblem(prm.Name))
		case seen[prm.Name]:
			add(path, "param %q is declared twice", prm.Name)
		case prm.Type == nil:
			add(path+".type", "param %q has no type", prm.Name)
		case typeProblem(prm.Type, 0) != "":
			add(path+".type", "param %q: type: %s", prm.Name, typeProblem(prm.Type, 0))
		case prm.Default != nil && prm.Type.CheckJSON(prm.Default) != nil:
			add(path+".default", "param %q: default does not fit %s: %s", prm.Name, prm.Type,
				strings.TrimPrefix(prm.Type.CheckJSON(prm.Default).Error(), "$: "))
		default:
			out = append(out, prm)
		}
		seen[prm.Name] = true
	}
	return out
}
