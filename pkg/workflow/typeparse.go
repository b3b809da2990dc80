package workflow

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// aliasDef is one entry of the workflow's types section.
type aliasDef struct {
	node  *yaml.Node // the type expression
	key   *yaml.Node
	state int // 0 unresolved, 1 resolving, 2 done
	typ   *Type
}

func builtinNames() []string {
	return []string{"str", "int", "float", "bool", "date", "datetime_notz", "datetime_tz", "datetime_utc"}
}

// parseTypeAliases reads the types section and resolves every alias, reporting cycles once each.
func (p *parser) parseTypeAliases(v *yaml.Node) {
	n := p.resolve(v)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "types", "types must be a mapping of alias name to type, not %s", describeNode(n))
		return
	}
	p.aliases = make(map[string]*aliasDef)
	for _, e := range p.entries(n, "types", "types: ", nil) {
		if msg := nameProblem(e.key); msg != "" {
			p.errorf(e.kNode, "types."+e.key, "type alias name %q %s", truncate(e.key), msg)
			continue
		}
		if _, builtin := builtinKinds[e.key]; builtin {
			p.errorf(e.kNode, "types."+e.key, "type alias %q would hide the builtin type of that name", e.key)
			continue
		}
		p.aliases[e.key] = &aliasDef{node: e.value, key: e.kNode}
		p.aliasOrder = append(p.aliasOrder, e.key)
	}
	for _, name := range p.aliasOrder {
		p.resolveAlias(name, nil)
	}
}

// resolveAlias returns the type of an alias, resolving it on first use. stack is the chain of aliases
// being resolved, to print a cycle.
func (p *parser) resolveAlias(name string, stack []string) *Type {
	def := p.aliases[name]
	switch def.state {
	case 2:
		return def.typ
	case 1:
		return nil // the cycle is reported where it closes
	}
	def.state = 1
	stack = append(stack, name)
	def.typ = p.parseTypeIn(def.node, "types."+name, fmt.Sprintf("type alias %q: ", name), 0, stack)
	if def.typ != nil {
		cp := *def.typ
		cp.Alias = name
		def.typ = &cp
	}
	def.state = 2
	return def.typ
}

// parseType reads a type expression: a builtin name, types.Alias, {field: T, ...} or [T].
func (p *parser) parseType(v *yaml.Node, path, who string, depth int) *Type {
	return p.parseTypeIn(v, path, who, depth, nil)
}

func (p *parser) parseTypeIn(v *yaml.Node, path, who string, depth int, stack []string) *Type {
	n := p.resolve(v)
	if n == nil {
		return nil
	}
	if depth > maxCheckDepth {
		p.errorf(n, path, "%stype is nested deeper than %d levels", who, maxCheckDepth)
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" {
			break
		}
		name := n.Value
		if k, ok := builtinKinds[name]; ok {
			return &Type{Kind: k}
		}
		if alias, ok := strings.CutPrefix(name, "types."); ok {
			def := p.aliases[alias]
			if def == nil {
				p.errorf(n, path, "%sunknown type alias %q%s", who, truncate(name), p.suggestAlias(alias, p.aliasOrder))
				return nil
			}
			if def.state == 1 {
				chain := stack[indexOf(stack, alias):]
				p.errorf(n, path, "%stype alias cycle: %s -> %s", who, strings.Join(chain, " -> "), alias)
				return nil
			}
			return p.resolveAlias(alias, stack)
		}
		if modern, ok := legacyTypeNames[strings.ToLower(name)]; ok {
			p.errorf(n, path, "%sunknown type %q: use %q", who, truncate(name), modern)
			return nil
		}
		if _, ok := p.aliases[name]; ok {
			p.errorf(n, path, "%sunknown type %q: aliases are written %q", who, name, "types."+name)
			return nil
		}
		p.errorf(n, path, "%sunknown type %q%s", who, truncate(name), p.suggest(name, builtinNames()))
		return nil
	case yaml.SequenceNode:
		if len(n.Content) != 1 {
			p.errorf(n, path, "%san array type has exactly one element type, like [str]", who)
			return nil
		}
		elem := p.parseTypeIn(n.Content[0], path, who, depth+1, stack)
		if elem == nil {
			return nil
		}
		return &Type{Kind: KindArray, Elem: elem}
	case yaml.MappingNode:
		t := &Type{Kind: KindObject}
		ok := true
		for _, e := range p.entries(n, path, who, nil) {
			if msg := nameProblem(e.key); msg != "" {
				p.errorf(e.kNode, path, "%sfield name %q %s", who, truncate(e.key), msg)
				ok = false
				continue
			}
			ft := p.parseTypeIn(e.value, path, fmt.Sprintf("%sfield %q: ", who, e.key), depth+1, stack)
			if ft == nil {
				ok = false
				continue
			}
			t.Fields = append(t.Fields, Field{Name: e.key, Type: ft})
		}
		if !ok || len(t.Fields) != len(n.Content)/2 {
			return nil
		}
		return t
	}
	p.errorf(n, path, "%sa type is a name (str, int, ...), types.Alias, {field: type} or [type], not %s", who, describeNode(n))
	return nil
}

func (p *parser) suggestAlias(name string, aliases []string) string {
	s := p.suggest(name, aliases)
	if s == "" {
		return ""
	}
	return strings.Replace(s, `mean "`, `mean "types.`, 1)
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return 0
}
