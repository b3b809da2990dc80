package workflow

import (
	"encoding/json"
	"strings"
	"testing"
)

const paramsYAML = `name: p
params:
  city: {type: str, default: Lyon}
  day: {type: date}
  count: {type: int, default: 3}
  tags: {type: [str], default: []}
  window: {type: {hours: int}, default: {hours: 1}}
tasks:
  a:
    executor: process
    command: "true"
    input_type: {city: str, day: date, n: int, hours: int}
    inputs:
      city: {ref: params.city}
      day: {ref: params.day}
      n: {ref: params.count}
      hours: {ref: params.window.hours}
`

func paramsPlan(t *testing.T) *Plan {
	t.Helper()
	p, err := Parse("p.yaml", []byte(paramsYAML), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A run's parameters are bound against the declared ones: defaults fill what is not given, each
// value is checked against its type, and every problem is named.
func TestBindParams(t *testing.T) {
	p := paramsPlan(t)
	got, err := p.BindParams(map[string]json.RawMessage{"day": json.RawMessage(`"2024-08-01"`), "count": json.RawMessage(` 7 `)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"city":"Lyon","count":7,"day":"2024-08-01","tags":[],"window":{"hours":1}}`; string(got) != want {
		t.Errorf("bound %s, want %s", got, want)
	}
	_, err = p.BindParams(map[string]json.RawMessage{"cty": json.RawMessage(`"Paris"`), "count": json.RawMessage(`"seven"`)})
	var perr *ParamError
	if !asParamError(err, &perr) {
		t.Fatalf("err = %v, want a *ParamError", err)
	}
	want := []string{
		`unknown param "cty" (declared: city, day, count, tags, window); did you mean "city"?`,
		`param "day" is required (date)`,
		`param "count": "seven" does not fit int: want int, got "seven"`,
	}
	if strings.Join(perr.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(perr.Problems, "\n"), strings.Join(want, "\n"))
	}
	none, err := Parse("n.yaml", []byte("name: n\ntasks:\n  a: {executor: noop}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := none.BindParams(nil); err != nil || v != nil {
		t.Errorf("no params: %s, %v", v, err)
	}
	if _, err := none.BindParams(map[string]json.RawMessage{"x": json.RawMessage(`1`)}); err == nil ||
		!strings.Contains(err.Error(), `unknown param "x" (the workflow declares none)`) {
		t.Errorf("a param for a workflow without any: %v", err)
	}
}

func asParamError(err error, target **ParamError) bool {
	pe, ok := err.(*ParamError)
	*target = pe
	return ok
}

// --param NAME=VALUE: text types as written, others as JSON; malformed arguments are named.
func TestParseParamArgs(t *testing.T) {
	p := paramsPlan(t)
	got, err := p.ParseParamArgs([]string{"city=Paris", "day=2024-08-01", "count=12", "tags=[\"a\"]", `window={"hours": 2}`})
	if err != nil {
		t.Fatal(err)
	}
	bound, err := p.BindParams(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"city":"Paris","count":12,"day":"2024-08-01","tags":["a"],"window":{"hours":2}}`; string(bound) != want {
		t.Errorf("bound %s, want %s", bound, want)
	}
	if got, err := p.ParseParamArgs([]string{`city="Saint Malo"`, "day=2024-01-01"}); err != nil || string(got["city"]) != `"Saint Malo"` {
		t.Errorf("a JSON string for a str: %s, %v", got["city"], err)
	}
	for args, msg := range map[string]string{
		"city":             `--param "city": want NAME=VALUE`,
		"count=many":       "--param count=many: not a JSON value, as a int must be",
		"city=a,city=b":    "--param city: given twice",
		"=3":               `--param "=3": want NAME=VALUE`,
		"count=1,count=2x": "given twice",
	} {
		if _, err := p.ParseParamArgs(strings.Split(args, ",")); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", args, err, msg)
		}
	}
}

// A plan from the network is checked like a file: declared params, defaults, and refs to them.
func TestValidateParams(t *testing.T) {
	p := paramsPlan(t)
	if err := p.Validate(); err != nil {
		t.Fatalf("a parsed plan: %v", err)
	}
	bad := *p
	bad.Params = append([]Param(nil), p.Params...)
	bad.Params[1].Default = json.RawMessage(`"tomorrow"`)
	bad.Params = append(bad.Params, Param{Name: "city", Type: &Type{Kind: KindStr}}, Param{Name: "x"})
	err := bad.Validate()
	for _, msg := range []string{
		`param "day": default does not fit date`,
		`param "city" is declared twice`,
		`param "x" has no type`,
		`ref "params.day": no such param "day"`,
	} {
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("err = %v, want %q", err, msg)
		}
	}
}
