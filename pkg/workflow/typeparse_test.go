package workflow

import (
	"strings"
	"testing"
)

// parseOutputType compiles a one-task workflow whose output_type is typ, with the given aliases.
func parseOutputType(t *testing.T, types, typ string) (*Type, error) {
	t.Helper()
	src := "name: types\n"
	if types != "" {
		src += "types:\n" + types
	}
	src += "tasks:\n  a:\n    executor: noop\n    output_type: " + typ + "\n"
	plan, err := Parse("types.yaml", []byte(src), t.TempDir())
	if err != nil {
		return nil, err
	}
	return plan.Tasks[0].OutputType, nil
}

func TestParseTypes(t *testing.T) {
	t.Parallel()
	aliases := "  Point: {x: float, y: float}\n  Path: [types.Point]\n  Name: str\n"
	tests := []struct {
		typ, want string // want is Type.String() of the result, or the error's message suffix
		ok        bool
	}{
		{"str", "str", true},
		{"int", "int", true},
		{"float", "float", true},
		{"bool", "bool", true},
		{"date", "date", true},
		{"datetime_notz", "datetime_notz", true},
		{"datetime_tz", "datetime_tz", true},
		{"datetime_utc", "datetime_utc", true},
		{"[int]", "[int]", true},
		{"[[str]]", "[[str]]", true},
		{"{a: int, b: [date]}", "{a: int, b: [date]}", true},
		{"{}", "{}", true},
		{"types.Point", "types.Point", true},
		{"types.Path", "types.Path", true},
		{"{p: types.Path, n: types.Name}", "{p: types.Path, n: types.Name}", true},
		{"string", `unknown type "string": use "str"`, false},
		{"integer", `unknown type "integer": use "int"`, false},
		{"number", `unknown type "number": use "float"`, false},
		{"boolean", `unknown type "boolean": use "bool"`, false},
		{"datetime", `unknown type "datetime": use "datetime_tz"`, false},
		{"dict", `unknown type "dict": use "{field: T}"`, false},
		{"flot", `unknown type "flot"; did you mean "float"?`, false},
		{"types.Pint", `unknown type alias "types.Pint"; did you mean "types.Point"?`, false},
		{"Point", `unknown type "Point": aliases are written "types.Point"`, false},
		{"[]", "an array type has exactly one element type, like [str]", false},
		{"[int, str]", "an array type has exactly one element type, like [str]", false},
		{"42", "a type is a name (str, int, ...), types.Alias, {field: type} or [type], not 42", false},
		{"{1x: int}", `field name "1x" must match [A-Za-z_][A-Za-z0-9_]*`, false},
		{"{a: int, a: str}", `duplicate key "a" (first defined at line`, false},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			typ, err := parseOutputType(t, aliases, tc.typ)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("output_type %s: %v", tc.typ, err)
			case tc.ok && typ.String() != tc.want:
				t.Fatalf("output_type %s = %s, want %s", tc.typ, typ, tc.want)
			case !tc.ok && err == nil:
				t.Fatalf("output_type %s accepted as %s", tc.typ, typ)
			case !tc.ok && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("output_type %s: error %q does not contain %q", tc.typ, err, tc.want)
			}
		})
	}
}

func TestAliasesExpand(t *testing.T) {
	t.Parallel()
	typ, err := parseOutputType(t, "  Point: {x: float, y: float}\n  Path: [types.Point]\n", "types.Path")
	if err != nil {
		t.Fatal(err)
	}
	if typ.Kind != KindArray || typ.Elem.Kind != KindObject || typ.Elem.Alias != "Point" || len(typ.Elem.Fields) != 2 {
		t.Fatalf("alias not expanded: %+v", typ)
	}
	if err := typ.CheckJSON([]byte(`[{"x": 1, "y": 2.5}]`)); err != nil {
		t.Fatalf("value of the expanded alias rejected: %v", err)
	}
	if err := typ.CheckJSON([]byte(`[{"x": 1}]`)); err == nil || !strings.Contains(err.Error(), `$[0]: missing field "y" of types.Point`) {
		t.Fatalf("CheckJSON = %v, want missing field error", err)
	}
}
