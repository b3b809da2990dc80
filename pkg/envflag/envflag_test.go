package envflag_test

import (
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/envflag"
)

// even is a flag.Value that accepts only even numbers, to exercise Var.
type even int

func (e *even) String() string { return strconv.Itoa(int(*e)) }

func (e *even) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n%2 != 0 {
		return errors.New("not an even number")
	}
	*e = even(n)
	return nil
}

// values holds one flag of every kind.
type values struct {
	str  string
	num  int
	big  int64
	dur  time.Duration
	on   bool
	even even
	rate float64
}

var defaults = values{str: "def", num: 1, big: 1 << 40, dur: time.Second, on: false, even: 2, rate: 1.5}

// setup defines the flags of values on a fresh FlagSet reading env, then parses args. It returns
// the values, the FlagSet and the Set's Err.
func setup(t *testing.T, env map[string]string, args ...string) (*values, *flag.FlagSet, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := envflag.New(fs, func(k string) string { return env[k] })
	v := &values{even: defaults.even}
	s.StringVar(&v.str, "str", "T_STR", defaults.str, "a string")
	s.IntVar(&v.num, "num", "T_NUM", defaults.num, "an int")
	s.Int64Var(&v.big, "big", "T_BIG", defaults.big, "an int64")
	s.DurationVar(&v.dur, "dur", "T_DUR", defaults.dur, "a duration")
	s.BoolVar(&v.on, "on", "T_ON", defaults.on, "a bool")
	s.Var(&v.even, "even", "T_EVEN", "an even number")
	s.Float64Var(&v.rate, "rate", "T_RATE", defaults.rate, "a number")
	envErr := s.Err()
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return v, fs, envErr
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	env := map[string]string{"T_STR": "env", "T_NUM": "-3", "T_BIG": "9000000000", "T_DUR": "2m",
		"T_ON": "true", "T_EVEN": "4", "T_RATE": "-0.5"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want values
	}{
		{"default", nil, nil, defaults},
		{"empty env is unset", map[string]string{"T_STR": "", "T_NUM": "", "T_ON": ""}, nil, defaults},
		{"env over default", env, nil, values{str: "env", num: -3, big: 9000000000, dur: 2 * time.Minute, on: true, even: 4, rate: -0.5}},
		{"flag over env", env, []string{"--str=flag", "--num=7", "--big", "-1", "--dur=1h", "--on=false", "--even=6", "--rate=3"},
			values{str: "flag", num: 7, big: -1, dur: time.Hour, on: false, even: 6, rate: 3}},
		{"flag over default", nil, []string{"--str", "", "--num", "0", "--on", "--even", "0"},
			values{str: "", num: 0, big: defaults.big, dur: defaults.dur, on: true, even: 0, rate: defaults.rate}},
		{"flag over some env", env, []string{"--num=8"},
			values{str: "env", num: 8, big: 9000000000, dur: 2 * time.Minute, on: true, even: 4, rate: -0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := setup(t, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("Err: %v", err)
			}
			if *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestBadEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		// want are the exact lines of Err, one per bad variable, in the order the flags were defined.
		want []string
	}{
		{"int", map[string]string{"T_NUM": "many"}, nil, []string{`T_NUM="many": not a whole number`}},
		{"int not hex", map[string]string{"T_NUM": "0x10"}, nil, []string{`T_NUM="0x10": not a whole number`}},
		{"int range", map[string]string{"T_NUM": "99999999999999999999"}, nil,
			[]string{`T_NUM="99999999999999999999": out of range`}},
		{"int64", map[string]string{"T_BIG": "1.5"}, nil, []string{`T_BIG="1.5": not a whole number`}},
		{"duration", map[string]string{"T_DUR": "5"}, nil, []string{`T_DUR="5": not a duration such as 30s or 1h30m`}},
		{"bool", map[string]string{"T_ON": "yes"}, nil, []string{`T_ON="yes": not true or false`}},
		{"float", map[string]string{"T_RATE": "fast"}, nil, []string{`T_RATE="fast": not a number`}},
		{"var", map[string]string{"T_EVEN": "3"}, nil, []string{`T_EVEN="3": not an even number`}},
		{"all collected", map[string]string{"T_EVEN": "x", "T_NUM": "x", "T_DUR": "x", "T_STR": "fine"}, nil,
			[]string{`T_NUM="x": not a whole number`, `T_DUR="x": not a duration such as 30s or 1h30m`,
				`T_EVEN="x": not an even number`}},
		{"even when the flag is given", map[string]string{"T_NUM": "x"}, []string{"--num=3"},
			[]string{`T_NUM="x": not a whole number`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := setup(t, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("error %q, want %q", got, tc.want)
			}
			var ee *envflag.EnvError
			if !errors.As(err, &ee) || ee.Name == "" || ee.Value != tc.env[ee.Name] || ee.Err == nil {
				t.Errorf("error %v is not an *EnvError with the variable and its value: %+v", err, ee)
			}
		})
	}
}

func TestBadEnvKeepsDefault(t *testing.T) {
	t.Parallel()
	got, _, err := setup(t, map[string]string{"T_NUM": "x", "T_EVEN": "5", "T_ON": "maybe"})
	if err == nil {
		t.Fatal("no error for bad variables")
	}
	if *got != defaults {
		t.Errorf("got %+v, want the defaults %+v", *got, defaults)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	_, fs, _ := setup(t, map[string]string{"T_DUR": "3s", "T_EVEN": "8"})
	for _, tc := range []struct{ name, usage, def string }{
		{"str", "a string (env T_STR)", "def"},
		{"num", "an int (env T_NUM)", "1"},
		{"big", "an int64 (env T_BIG)", "1099511627776"},
		{"dur", "a duration (env T_DUR)", "3s"},
		{"on", "a bool (env T_ON)", "false"},
		{"even", "an even number (env T_EVEN)", "8"},
	} {
		f := fs.Lookup(tc.name)
		if f == nil {
			t.Errorf("flag %s not defined", tc.name)
			continue
		}
		if f.Usage != tc.usage || f.DefValue != tc.def {
			t.Errorf("flag %s: usage %q default %q, want %q default %q", tc.name, f.Usage, f.DefValue, tc.usage, tc.def)
		}
	}
}
