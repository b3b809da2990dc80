package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// Set defines flags on a flag.FlagSet with defaults read from environment variables.
type Set struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// New returns a Set that defines flags on fs and reads variables through getenv.
func New(fs *flag.FlagSet, getenv func(string) string) *Set {
	return &Set{fs: fs, getenv: getenv}
}

// EnvError reports an environment variable whose value does not parse.
type EnvError struct {
	// Name is the variable, e.g. ORK_EXECUTOR_CONCURRENCY.
	Name string
	// Value is the variable's value as read.
	Value string
	// Err says what the value should have been.
	Err error
}

func (e *EnvError) Error() string { return fmt.Sprintf("%s=%q: %v", e.Name, e.Value, e.Err) }

// Unwrap returns the parse error.
func (e *EnvError) Unwrap() error { return e.Err }

// Err returns every variable that did not parse, joined, or nil.
func (s *Set) Err() error { return errors.Join(s.errs...) }

// fail records that env's value v does not parse.
func (s *Set) fail(env, v string, err error) {
	s.errs = append(s.errs, &EnvError{Name: env, Value: v, Err: err})
}

func usage(text, env string) string { return text + " (env " + env + ")" }

// StringVar defines the string flag name stored in p, defaulting to env's value, else def.
func (s *Set) StringVar(p *string, name, env, def, text string) {
	if v := s.getenv(env); v != "" {
		def = v
	}
	s.fs.StringVar(p, name, def, usage(text, env))
}

// IntVar defines the int flag name stored in p, defaulting to env's value (a decimal number),
// else def.
func (s *Set) IntVar(p *int, name, env string, def int, text string) {
	if v := s.getenv(env); v != "" {
		n, err := strconv.ParseInt(v, 10, strconv.IntSize)
		if err != nil {
			s.fail(env, v, intError(err))
		} else {
			def = int(n)
		}
	}
	s.fs.IntVar(p, name, def, usage(text, env))
}

// Float64Var defines the float64 flag name stored in p, defaulting to env's value (a number),
// else def.
func (s *Set) Float64Var(p *float64, name, env string, def float64, text string) {
	if v := s.getenv(env); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			s.fail(env, v, errors.New("not a number"))
		} else {
			def = f
		}
	}
	s.fs.Float64Var(p, name, def, usage(text, env))
}

// Int64Var defines the int64 flag name stored in p, defaulting to env's value (a decimal
// number), else def.
func (s *Set) Int64Var(p *int64, name, env string, def int64, text string) {
	if v := s.getenv(env); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.fail(env, v, intError(err))
		} else {
			def = n
		}
	}
	s.fs.Int64Var(p, name, def, usage(text, env))
}

// DurationVar defines the duration flag name stored in p, defaulting to env's value, else def.
func (s *Set) DurationVar(p *time.Duration, name, env string, def time.Duration, text string) {
	if v := s.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.fail(env, v, errors.New("not a duration such as 30s or 1h30m"))
		} else {
			def = d
		}
	}
	s.fs.DurationVar(p, name, def, usage(text, env))
}

// BoolVar defines the boolean flag name stored in p, defaulting to env's value, else def.
func (s *Set) BoolVar(p *bool, name, env string, def bool, text string) {
	if v := s.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.fail(env, v, errors.New("not true or false"))
		} else {
			def = b
		}
	}
	s.fs.BoolVar(p, name, def, usage(text, env))
}

// Var defines the flag name of a custom type. Its default is v's current value, replaced by
// env's value through v.Set when the variable is set; the error of a failed Set is reported as
// the variable's.
func (s *Set) Var(v flag.Value, name, env, text string) {
	if ev := s.getenv(env); ev != "" {
		if err := v.Set(ev); err != nil {
			s.fail(env, ev, err)
		}
	}
	s.fs.Var(v, name, usage(text, env))
}

// intError turns a strconv error into what the user should write instead.
func intError(err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return errors.New("out of range")
	}
	return errors.New("not a whole number")
}
