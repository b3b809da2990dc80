package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Layouts of the date and time kinds. Fractional seconds are optional.
const (
	layoutDate         = "2006-01-02"
	layoutDatetimeNoTZ = "2006-01-02T15:04:05.999999999"
)

// builtinKinds are the kinds a type name can spell directly.
var builtinKinds = map[string]Kind{
	"str":           KindStr,
	"int":           KindInt,
	"float":         KindFloat,
	"bool":          KindBool,
	"date":          KindDate,
	"datetime_notz": KindDatetimeNoTZ,
	"datetime_tz":   KindDatetimeTZ,
	"datetime_utc":  KindDatetimeUTC,
}

// legacyTypeNames maps type names used by other tools to ours, for a helpful message.
var legacyTypeNames = map[string]string{
	"string":    "str",
	"text":      "str",
	"integer":   "int",
	"long":      "int",
	"number":    "float",
	"double":    "float",
	"decimal":   "float",
	"boolean":   "bool",
	"datetime":  "datetime_tz",
	"timestamp": "datetime_utc",
	"time":      "datetime_tz",
	"list":      "[T]",
	"array":     "[T]",
	"dict":      "{field: T}",
	"map":       "{field: T}",
	"object":    "{field: T}",
}

// maxCheckDepth bounds the nesting CheckValue walks, so a hostile value cannot exhaust the stack.
const maxCheckDepth = 256

// String renders the type as written in YAML: the alias name (types.Name) when the type came from an
// alias, otherwise the builtin name, {field: T, ...} or [T].
func (t *Type) String() string {
	if t == nil {
		return "<nil>"
	}
	if t.Alias != "" {
		return "types." + t.Alias
	}
	return t.structure()
}

func (t *Type) structure() string {
	switch t.Kind {
	case KindObject:
		var b strings.Builder
		b.WriteByte('{')
		for i, f := range t.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Name)
			b.WriteString(": ")
			b.WriteString(f.Type.String())
		}
		b.WriteByte('}')
		return b.String()
	case KindArray:
		return "[" + t.Elem.String() + "]"
	default:
		return string(t.Kind)
	}
}

// Field returns the object field called name, or nil.
func (t *Type) Field(name string) *Type {
	if t == nil || t.Kind != KindObject {
		return nil
	}
	for _, f := range t.Fields {
		if f.Name == name {
			return f.Type
		}
	}
	return nil
}

// CheckJSON checks that raw is one JSON value of type t. Numbers keep their text, so a large int is
// judged exactly.
func (t *Type) CheckJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("decoding JSON value: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("decoding JSON value: unexpected data after the value")
	}
	return t.CheckValue(v)
}

// CheckValue checks that v, a value decoded from JSON with UseNumber (json.Number, string, bool, nil,
// []any, map[string]any), has type t. Objects must have exactly the declared fields; no type admits
// null. Go numbers (int, int64, float64) are accepted too. The error names the offending path, e.g.
// `$.rows[2].day: want date (YYYY-MM-DD), got "2024-13-01"`.
func (t *Type) CheckValue(v any) error {
	return t.check(v, "$", 0)
}

func (t *Type) check(v any, path string, depth int) error {
	if t == nil {
		return fmt.Errorf("%s: no type", path)
	}
	if depth > maxCheckDepth {
		return fmt.Errorf("%s: value nested deeper than %d levels", path, maxCheckDepth)
	}
	switch t.Kind {
	case KindStr:
		if _, ok := v.(string); !ok {
			return mismatch(path, t, v)
		}
	case KindBool:
		if _, ok := v.(bool); !ok {
			return mismatch(path, t, v)
		}
	case KindInt:
		if !isInt(v) {
			return mismatch(path, t, v)
		}
	case KindFloat:
		if !isNumber(v) {
			return mismatch(path, t, v)
		}
	case KindDate, KindDatetimeNoTZ, KindDatetimeTZ, KindDatetimeUTC:
		s, ok := v.(string)
		if !ok || checkTime(t.Kind, s) != nil {
			return mismatch(path, t, v)
		}
	case KindArray:
		items, ok := v.([]any)
		if !ok {
			return mismatch(path, t, v)
		}
		for i, item := range items {
			if err := t.Elem.check(item, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	case KindObject:
		obj, ok := v.(map[string]any)
		if !ok {
			return mismatch(path, t, v)
		}
		for _, f := range t.Fields {
			fv, ok := obj[f.Name]
			if !ok {
				return fmt.Errorf("%s: missing field %q of %s", path, f.Name, t)
			}
			if err := f.Type.check(fv, path+"."+f.Name, depth+1); err != nil {
				return err
			}
		}
		if len(obj) > len(t.Fields) {
			for k := range obj {
				if t.Field(k) == nil {
					return fmt.Errorf("%s: unexpected field %q: %s has no such field", path, k, t)
				}
			}
		}
	default:
		return fmt.Errorf("%s: unknown kind %q", path, t.Kind)
	}
	return nil
}

func mismatch(path string, t *Type, v any) error {
	want := t.String()
	switch t.Kind {
	case KindDate:
		want += " (YYYY-MM-DD)"
	case KindDatetimeNoTZ:
		want += " (YYYY-MM-DDTHH:MM:SS without offset)"
	case KindDatetimeTZ:
		want += " (RFC 3339 with offset)"
	case KindDatetimeUTC:
		want += " (RFC 3339 in UTC, Z or +00:00)"
	}
	return fmt.Errorf("%s: want %s, got %s", path, want, describe(v))
}

// describe renders a value for an error message, shortened so a huge value stays a short message.
func describe(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		s = strconv.Quote(x)
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func isInt(v any) bool {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			return false
		}
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			return true
		}
		_, err := strconv.ParseUint(s, 10, 64)
		return err == nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	case float64:
		return x == math.Trunc(x) && !math.IsInf(x, 0)
	case float32:
		return float64(x) == math.Trunc(float64(x)) && !math.IsInf(float64(x), 0)
	}
	return false
}

func isNumber(v any) bool {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(x.String(), 64)
		return err == nil && !math.IsInf(f, 0)
	case float64:
		return !math.IsInf(x, 0) && !math.IsNaN(x)
	case float32:
		return !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x))
	}
	return isInt(v)
}

// checkTime checks the textual format of a date or time kind.
func checkTime(k Kind, s string) error {
	switch k {
	case KindDate:
		_, err := time.Parse(layoutDate, s)
		return err
	case KindDatetimeNoTZ:
		_, err := time.Parse(layoutDatetimeNoTZ, s)
		return err
	case KindDatetimeTZ, KindDatetimeUTC:
		// The date part must use T: RFC 3339 allows a space only in its profile notes, and Go's
		// parser accepts lowercase letters; insist on the canonical form.
		if len(s) < 20 || s[10] != 'T' {
			return errors.New("not RFC 3339")
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return err
		}
		if k == KindDatetimeUTC {
			if _, off := ts.Zone(); off != 0 || strings.HasSuffix(s, "-00:00") {
				return errors.New("not UTC")
			}
		}
		return nil
	}
	return fmt.Errorf("kind %q is not a date or time", k)
}

// assignable reports whether every value of type src is acceptable where dst is declared. An int fits
// a float (every JSON integer is a number), a datetime_utc fits a datetime_tz, objects must have the
// same field names with assignable field types, arrays assignable elements.
func assignable(src, dst *Type) bool {
	return assignableDepth(src, dst, 0)
}

func assignableDepth(src, dst *Type, depth int) bool {
	if src == nil || dst == nil || depth > maxCheckDepth {
		return false
	}
	switch {
	case src.Kind == dst.Kind:
	case src.Kind == KindInt && dst.Kind == KindFloat:
		return true
	case src.Kind == KindDatetimeUTC && dst.Kind == KindDatetimeTZ:
		return true
	default:
		return false
	}
	switch src.Kind {
	case KindArray:
		return assignableDepth(src.Elem, dst.Elem, depth+1)
	case KindObject:
		if len(src.Fields) != len(dst.Fields) {
			return false
		}
		for _, f := range dst.Fields {
			if !assignableDepth(src.Field(f.Name), f.Type, depth+1) {
				return false
			}
		}
	}
	return true
}
