package workflow

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	point := &Type{Kind: KindObject, Alias: "Point", Fields: []Field{
		{Name: "x", Type: &Type{Kind: KindFloat}},
		{Name: "y", Type: &Type{Kind: KindFloat}},
	}}
	tests := []struct {
		name    string
		typ     *Type
		value   string
		wantErr string // substring; "" means valid
	}{
		{"str", &Type{Kind: KindStr}, `"a"`, ""},
		{"str empty", &Type{Kind: KindStr}, `""`, ""},
		{"str got number", &Type{Kind: KindStr}, `1`, "$: want str, got 1"},
		{"str got null", &Type{Kind: KindStr}, `null`, "got null"},
		{"int", &Type{Kind: KindInt}, `42`, ""},
		{"int negative", &Type{Kind: KindInt}, `-7`, ""},
		{"int big uint64", &Type{Kind: KindInt}, `18446744073709551615`, ""},
		{"int too big", &Type{Kind: KindInt}, `18446744073709551616`, "want int"},
		{"int fraction", &Type{Kind: KindInt}, `1.5`, "want int, got 1.5"},
		{"int exponent", &Type{Kind: KindInt}, `1e3`, "want int"},
		{"int string", &Type{Kind: KindInt}, `"1"`, `want int, got "1"`},
		{"float", &Type{Kind: KindFloat}, `1.5`, ""},
		{"float from int", &Type{Kind: KindFloat}, `2`, ""},
		{"float exponent", &Type{Kind: KindFloat}, `-2.5e-3`, ""},
		{"float overflow", &Type{Kind: KindFloat}, `1e400`, "want float"},
		{"float bool", &Type{Kind: KindFloat}, `true`, "want float, got true"},
		{"bool", &Type{Kind: KindBool}, `false`, ""},
		{"bool string", &Type{Kind: KindBool}, `"true"`, "want bool"},
		{"date", &Type{Kind: KindDate}, `"2024-02-29"`, ""},
		{"date invalid day", &Type{Kind: KindDate}, `"2023-02-29"`, "want date (YYYY-MM-DD)"},
		{"date with time", &Type{Kind: KindDate}, `"2024-01-01T00:00:00"`, "want date"},
		{"date short", &Type{Kind: KindDate}, `"2024-1-1"`, "want date"},
		{"notz", &Type{Kind: KindDatetimeNoTZ}, `"2024-01-01T10:20:30"`, ""},
		{"notz fraction", &Type{Kind: KindDatetimeNoTZ}, `"2024-01-01T10:20:30.123"`, ""},
		{"notz with Z", &Type{Kind: KindDatetimeNoTZ}, `"2024-01-01T10:20:30Z"`, "want datetime_notz"},
		{"notz with offset", &Type{Kind: KindDatetimeNoTZ}, `"2024-01-01T10:20:30+02:00"`, "want datetime_notz"},
		{"tz offset", &Type{Kind: KindDatetimeTZ}, `"2024-01-01T10:20:30+02:00"`, ""},
		{"tz Z", &Type{Kind: KindDatetimeTZ}, `"2024-01-01T10:20:30Z"`, ""},
		{"tz fraction", &Type{Kind: KindDatetimeTZ}, `"2024-01-01T10:20:30.5-05:30"`, ""},
		{"tz without offset", &Type{Kind: KindDatetimeTZ}, `"2024-01-01T10:20:30"`, "want datetime_tz (RFC 3339 with offset)"},
		{"tz space", &Type{Kind: KindDatetimeTZ}, `"2024-01-01 10:20:30Z"`, "want datetime_tz"},
		{"utc Z", &Type{Kind: KindDatetimeUTC}, `"2024-01-01T10:20:30Z"`, ""},
		{"utc zero offset", &Type{Kind: KindDatetimeUTC}, `"2024-01-01T10:20:30+00:00"`, ""},
		{"utc minus zero", &Type{Kind: KindDatetimeUTC}, `"2024-01-01T10:20:30-00:00"`, "want datetime_utc"},
		{"utc other offset", &Type{Kind: KindDatetimeUTC}, `"2024-01-01T10:20:30+01:00"`, "want datetime_utc"},
		{"utc no offset", &Type{Kind: KindDatetimeUTC}, `"2024-01-01T10:20:30"`, "want datetime_utc"},
		{"array", &Type{Kind: KindArray, Elem: &Type{Kind: KindInt}}, `[1,2,3]`, ""},
		{"array empty", &Type{Kind: KindArray, Elem: &Type{Kind: KindInt}}, `[]`, ""},
		{"array bad item", &Type{Kind: KindArray, Elem: &Type{Kind: KindInt}}, `[1,"x"]`, `$[1]: want int, got "x"`},
		{"array not array", &Type{Kind: KindArray, Elem: &Type{Kind: KindInt}}, `{}`, "$: want [int], got an object"},
		{"object", point, `{"x":1,"y":2.5}`, ""},
		{"object missing", point, `{"x":1}`, `$: missing field "y" of types.Point`},
		{"object extra", point, `{"x":1,"y":2,"z":3}`, `unexpected field "z"`},
		{"object bad field", point, `{"x":"1","y":2}`, `$.x: want float`},
		{"object not object", point, `[1]`, "want types.Point, got an array"},
		{"nested path", &Type{Kind: KindObject, Fields: []Field{{Name: "rows", Type: &Type{Kind: KindArray, Elem: point}}}},
			`{"rows":[{"x":1,"y":1},{"x":1,"y":null}]}`, "$.rows[1].y: want float, got null"},
		{"trailing data", &Type{Kind: KindInt}, `1 2`, "unexpected data after the value"},
		{"invalid json", &Type{Kind: KindInt}, `{`, "decoding JSON value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.typ.CheckJSON([]byte(tc.value))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckJSON(%s) = %v, want nil", tc.value, err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("CheckJSON(%s) = nil, want error containing %q", tc.value, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("CheckJSON(%s) = %q, want it to contain %q", tc.value, err, tc.wantErr)
			}
		})
	}
}

func TestCheckValueGoNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ  Kind
		v    any
		want bool
	}{
		{KindInt, 3, true}, {KindInt, int64(-3), true}, {KindInt, 3.0, true}, {KindInt, 3.5, false},
		{KindFloat, 3.5, true}, {KindFloat, 3, true}, {KindStr, 3, false}, {KindInt, json.Number("7"), true},
	} {
		err := (&Type{Kind: tc.typ}).CheckValue(tc.v)
		if (err == nil) != tc.want {
			t.Errorf("%s.CheckValue(%#v) = %v, want ok=%v", tc.typ, tc.v, err, tc.want)
		}
	}
}

func TestCheckValueDeepNesting(t *testing.T) {
	t.Parallel()
	typ := &Type{Kind: KindInt}
	for range maxCheckDepth + 10 {
		typ = &Type{Kind: KindArray, Elem: typ}
	}
	v := any(json.Number("1"))
	for range maxCheckDepth + 10 {
		v = []any{v}
	}
	if err := typ.CheckValue(v); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("CheckValue on deep value = %v, want nesting error", err)
	}
}

func TestTypeString(t *testing.T) {
	t.Parallel()
	typ := &Type{Kind: KindObject, Fields: []Field{
		{Name: "a", Type: &Type{Kind: KindArray, Elem: &Type{Kind: KindDate}}},
		{Name: "p", Type: &Type{Kind: KindObject, Alias: "Point"}},
	}}
	if got, want := typ.String(), "{a: [date], p: types.Point}"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

func TestAssignable(t *testing.T) {
	t.Parallel()
	obj := func(fields ...Field) *Type { return &Type{Kind: KindObject, Fields: fields} }
	k := func(kind Kind) *Type { return &Type{Kind: kind} }
	arr := func(e *Type) *Type { return &Type{Kind: KindArray, Elem: e} }
	tests := []struct {
		name     string
		src, dst *Type
		want     bool
	}{
		{"same builtin", k(KindStr), k(KindStr), true},
		{"int to float", k(KindInt), k(KindFloat), true},
		{"float to int", k(KindFloat), k(KindInt), false},
		{"utc to tz", k(KindDatetimeUTC), k(KindDatetimeTZ), true},
		{"tz to utc", k(KindDatetimeTZ), k(KindDatetimeUTC), false},
		{"notz to tz", k(KindDatetimeNoTZ), k(KindDatetimeTZ), false},
		{"date to str", k(KindDate), k(KindStr), false},
		{"array elem widening", arr(k(KindInt)), arr(k(KindFloat)), true},
		{"array elem mismatch", arr(k(KindStr)), arr(k(KindInt)), false},
		{"array to scalar", arr(k(KindStr)), k(KindStr), false},
		{"object same", obj(Field{"a", k(KindInt)}), obj(Field{"a", k(KindInt)}), true},
		{"object field widening", obj(Field{"a", k(KindInt)}), obj(Field{"a", k(KindFloat)}), true},
		{"object missing field", obj(Field{"a", k(KindInt)}), obj(Field{"a", k(KindInt)}, Field{"b", k(KindInt)}), false},
		{"object extra field", obj(Field{"a", k(KindInt)}, Field{"b", k(KindInt)}), obj(Field{"a", k(KindInt)}), false},
		{"object renamed field", obj(Field{"a", k(KindInt)}), obj(Field{"b", k(KindInt)}), false},
		{"alias ignored", &Type{Kind: KindStr, Alias: "Name"}, k(KindStr), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := assignable(tc.src, tc.dst); got != tc.want {
				t.Fatalf("assignable(%s, %s) = %v, want %v", tc.src, tc.dst, got, tc.want)
			}
		})
	}
}
