package schedule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Overlap policies: what a tick does while the schedule's previous run is still running.
const (
	OverlapSkip        = "skip"         // the tick is skipped (recorded, reason overlap)
	OverlapBufferOne   = "buffer_one"   // at most one tick waits for the running run to end; more are skipped
	OverlapBufferAll   = "buffer_all"   // every tick waits, and they run one after another
	OverlapCancelOther = "cancel_other" // the running run is cancelled; the tick starts once it has ended
	OverlapAllowAll    = "allow_all"    // the tick starts at once, whatever runs
)

// Catch-up policies: what happens to ticks missed while no scheduler could fire them (a tick is
// missed when it is handled more than LateGrace after its time).
const (
	CatchupNone   = "none"   // missed ticks are skipped
	CatchupLatest = "latest" // only the last missed tick fires
	CatchupAll    = "all"    // every missed tick within the catch-up window fires, in order, at most MaxCatchup
)

var (
	// Overlaps lists the overlap policies, the default first.
	Overlaps = []string{OverlapSkip, OverlapBufferOne, OverlapBufferAll, OverlapCancelOther, OverlapAllowAll}
	// Catchups lists the catch-up policies, the default first.
	Catchups = []string{CatchupLatest, CatchupNone, CatchupAll}
	// Fields are the keys of a schedule object.
	Fields = []string{"cron", "timezone", "overlap", "catchup", "catchup_window", "jitter", "params", "paused"}
)

const (
	// LateGrace is how late a tick may fire and still count as on time: a scheduler taking over from
	// one that stopped fires the ticks of the hand-over late, not as missed ones.
	LateGrace = 15 * time.Second
	// DefaultCatchupWindow is how far back catch-up "all" goes by default.
	DefaultCatchupWindow = 24 * time.Hour
	// MaxCatchup caps the missed ticks catch-up "all" fires after one outage (the latest ones).
	MaxCatchup = 100
	// MaxJitter bounds a schedule's jitter.
	MaxJitter = 24 * time.Hour
	// MaxBuffer caps the ticks that wait under buffer_all (and a backfill's ticks).
	MaxBuffer = 1000
)

// Spec is a workflow's schedule as written: a cron string, or an object whose empty fields take
// their defaults. It encodes as the plain cron string when nothing else is set, so a plan written
// with `schedule: "0 * * * *"` keeps one encoding (and one hash).
type Spec struct {
	Cron     string `json:"cron"`
	Timezone string `json:"timezone,omitempty"`
	Overlap  string `json:"overlap,omitempty"`
	Catchup  string `json:"catchup,omitempty"`
	// CatchupWindow and Jitter are Go durations ("90s", "1h30m").
	CatchupWindow string                     `json:"catchup_window,omitempty"`
	Jitter        string                     `json:"jitter,omitempty"`
	Params        map[string]json.RawMessage `json:"params,omitempty"`
	Paused        bool                       `json:"paused,omitempty"`
}

// plain reports whether s is only a cron expression.
func (s *Spec) plain() bool {
	return s.Timezone == "" && s.Overlap == "" && s.Catchup == "" && s.CatchupWindow == "" && s.Jitter == "" &&
		len(s.Params) == 0 && !s.Paused
}

type specObject Spec // Spec without its methods

// MarshalJSON encodes a plain schedule as its cron string, any other as an object.
func (s Spec) MarshalJSON() ([]byte, error) {
	if s.plain() {
		return json.Marshal(s.Cron)
	}
	return json.Marshal(specObject(s))
}

// UnmarshalJSON reads a cron string or an object.
func (s *Spec) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		*s = Spec{}
		return json.Unmarshal(data, &s.Cron)
	}
	var o specObject
	if err := json.Unmarshal(data, &o); err != nil {
		return err
	}
	*s = Spec(o)
	return nil
}

// OverlapPolicy is the overlap policy, default skip.
func (s *Spec) OverlapPolicy() string { return cmpOr(s.Overlap, OverlapSkip) }

// CatchupPolicy is the catch-up policy, default latest.
func (s *Spec) CatchupPolicy() string { return cmpOr(s.Catchup, CatchupLatest) }

// Zone is the time zone's name, default UTC.
func (s *Spec) Zone() string { return cmpOr(s.Timezone, "UTC") }

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// parser accepts 5 fields (minute first), 6 fields (seconds first) and descriptors (@daily).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month |
	cron.Dow | cron.Descriptor)

// Problem is one invalid field of a Spec.
type Problem struct {
	Field   string // "cron", "timezone", ...
	Message string
}

// Problems checks every field and returns what is wrong, field by field (params are the
// workflow's to check: see workflow.Plan.BindParams).
func (s *Spec) Problems() []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{field, fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(s.Cron) == "" {
		add("cron", "a schedule needs a cron expression")
	} else if _, err := parseCron(s.Cron); err != nil {
		add("cron", "%v", err)
	}
	if s.Timezone != "" {
		if _, err := loadZone(s.Timezone); err != nil {
			add("timezone", "%v", err)
		}
	}
	if s.Overlap != "" && !slices.Contains(Overlaps, s.Overlap) {
		add("overlap", "unknown overlap policy %q (one of %s)", s.Overlap, strings.Join(Overlaps, ", "))
	}
	if s.Catchup != "" && !slices.Contains(Catchups, s.Catchup) {
		add("catchup", "unknown catch-up policy %q (one of %s)", s.Catchup, strings.Join(Catchups, ", "))
	}
	if s.CatchupWindow != "" {
		if d, err := time.ParseDuration(s.CatchupWindow); err != nil || d <= 0 {
			add("catchup_window", "catchup_window %q is not a positive duration (such as 90m or 48h)", s.CatchupWindow)
		} else if s.CatchupPolicy() != CatchupAll {
			add("catchup_window", "catchup_window applies only to catchup: all")
		}
	}
	if s.Jitter != "" {
		if d, err := time.ParseDuration(s.Jitter); err != nil || d < 0 || d > MaxJitter {
			add("jitter", "jitter %q is not a duration between 0s and %s", s.Jitter, MaxJitter)
		}
	}
	return out
}

func parseCron(expr string) (cron.Schedule, error) {
	if strings.HasPrefix(strings.TrimSpace(expr), "TZ=") || strings.HasPrefix(strings.TrimSpace(expr), "CRON_TZ=") {
		return nil, errors.New("set the time zone with the timezone field, not in the cron expression")
	}
	c, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid cron expression (5 or 6 fields, or @daily and the like): %v", expr, err)
	}
	return c, nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, errors.New(`timezone "Local" depends on the machine: name the zone (such as Europe/Paris)`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (an IANA name such as America/New_York or UTC)", name)
	}
	return loc, nil
}

// Compile checks s and returns its schedule.
func Compile(s Spec) (*Schedule, error) {
	if ps := s.Problems(); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.Field + ": " + p.Message
		}
		return nil, fmt.Errorf("schedule: %s", strings.Join(msgs, "; "))
	}
	c, _ := parseCron(s.Cron)
	loc, _ := loadZone(s.Zone())
	sc := &Schedule{Spec: s, loc: loc, cron: c}
	if spec, ok := c.(*cron.SpecSchedule); ok {
		// Fields are matched on the wall clock, evaluated in UTC so that no zone rule interferes.
		naive := *spec
		naive.Location = time.UTC
		sc.spec = &naive
		sc.everyHour = spec.Hour&(1<<63) != 0 // the hour field is "*" (robfig's star bit)
	}
	if s.CatchupWindow != "" {
		sc.window, _ = time.ParseDuration(s.CatchupWindow)
	} else {
		sc.window = DefaultCatchupWindow
	}
	if s.Jitter != "" {
		sc.jitter, _ = time.ParseDuration(s.Jitter)
	}
	return sc, nil
}
