package schedule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func compile(t *testing.T, s Spec) *Schedule {
	t.Helper()
	sc, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fires lists the fire times within one local day.
func fires(t *testing.T, sc *Schedule, day string) []time.Time {
	t.Helper()
	d, err := time.ParseInLocation("2006-01-02", day, sc.Location())
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, sc.Location())
	ticks, more := sc.Ticks(d.Add(-time.Nanosecond), end.Add(-time.Nanosecond), 1000)
	if more {
		t.Fatal("too many ticks")
	}
	return ticks
}

func TestDaylightSavingNewYork(t *testing.T) {
	daily := compile(t, Spec{Cron: "30 2 * * *", Timezone: "America/New_York"})
	hourly := compile(t, Spec{Cron: "0 * * * *", Timezone: "America/New_York"})
	early := compile(t, Spec{Cron: "30 1 * * *", Timezone: "America/New_York"})
	quarter := compile(t, Spec{Cron: "*/15 * * * *", Timezone: "America/New_York"})

	// 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist: it fires at 03:00 EDT.
	got := fires(t, daily, "2026-03-08")
	if len(got) != 1 || !got[0].Equal(mustTime(t, "2026-03-08T03:00:00-04:00")) {
		t.Errorf("daily 02:30 on the spring-forward day fires at %v, want once at 03:00 EDT", got)
	}
	if n := len(fires(t, hourly, "2026-03-08")); n != 23 {
		t.Errorf("hourly fires %d times on the spring-forward day, want 23", n)
	}
	// 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:00-01:59 happens twice.
	got = fires(t, daily, "2026-11-01")
	if len(got) != 1 || !got[0].Equal(mustTime(t, "2026-11-01T02:30:00-05:00")) {
		t.Errorf("daily 02:30 on the fall-back day fires at %v, want once at 02:30 EST", got)
	}
	got = fires(t, early, "2026-11-01")
	if len(got) != 1 || !got[0].Equal(mustTime(t, "2026-11-01T01:30:00-04:00")) {
		t.Errorf("daily 01:30 on the fall-back day fires at %v, want once, at the first 01:30 (EDT)", got)
	}
	got = fires(t, hourly, "2026-11-01")
	if len(got) != 25 {
		t.Errorf("hourly fires %d times on the fall-back day, want 25: %v", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].Sub(got[i-1]); d != time.Hour {
			t.Errorf("hourly fires %v apart at %v", d, got[i])
		}
	}
	// Every 15 minutes: 96 on an ordinary day, 92 and 100 on the change days, always in time order.
	for day, want := range map[string]int{"2026-03-07": 96, "2026-03-08": 92, "2026-11-01": 100} {
		got := fires(t, quarter, day)
		if len(got) != want {
			t.Errorf("*/15 fires %d times on %s, want %d", len(got), day, want)
		}
		for i := 1; i < len(got); i++ {
			if d := got[i].Sub(got[i-1]); d != 15*time.Minute {
				t.Errorf("*/15 on %s: fires %v apart at %v", day, d, got[i])
			}
		}
	}
	// Ordinary days are unaffected, and Next walks the change with no duplicate or gap.
	if n := len(fires(t, daily, "2026-03-09")); n != 1 {
		t.Errorf("daily fires %d times on an ordinary day", n)
	}
}

func TestDaylightSavingGapAtTheSameInstant(t *testing.T) {
	// 02:00, 02:30 and 03:00 all map to 03:00 EDT on the spring-forward day: one fire there.
	sc := compile(t, Spec{Cron: "0,30 2,3 * * *", Timezone: "America/New_York"})
	got := fires(t, sc, "2026-03-08")
	want := []string{"2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"}
	if len(got) != len(want) {
		t.Fatalf("fires %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(mustTime(t, want[i])) {
			t.Errorf("fire %d at %v, want %s", i, got[i], want[i])
		}
	}
}

func TestLeapDay(t *testing.T) {
	sc := compile(t, Spec{Cron: "0 12 29 2 *"})
	got := sc.Next(mustTime(t, "2024-02-29T12:00:00Z"))
	if want := mustTime(t, "2028-02-29T12:00:00Z"); !got.Equal(want) {
		t.Errorf("next 29 February after 2024's is %v, want %v", got, want)
	}
}

func TestSecondsAndZones(t *testing.T) {
	sc := compile(t, Spec{Cron: "*/10 * * * * *"})
	got, _ := sc.Ticks(mustTime(t, "2026-01-01T00:00:00Z"), mustTime(t, "2026-01-01T00:01:00Z"), 100)
	if len(got) != 6 || !got[0].Equal(mustTime(t, "2026-01-01T00:00:10Z")) {
		t.Errorf("6-field schedule ticks %v", got)
	}
	tokyo := compile(t, Spec{Cron: "0 9 * * *", Timezone: "Asia/Tokyo"})
	if got := tokyo.Next(mustTime(t, "2026-06-01T00:00:00Z")); !got.Equal(mustTime(t, "2026-06-02T00:00:00Z")) {
		t.Errorf("09:00 Tokyo after 00:00Z (09:00 Tokyo) is %v", got)
	}
	every := compile(t, Spec{Cron: "@every 90s"})
	from := mustTime(t, "2026-06-01T00:00:00Z")
	if got := every.Next(from); got.Sub(from) != 90*time.Second {
		t.Errorf("@every 90s: next after %v is %v", from, got)
	}
}

func TestSpecProblems(t *testing.T) {
	cases := map[string]Spec{
		"cron":           {Cron: "61 * * * *"},
		"timezone":       {Cron: "* * * * *", Timezone: "Mars/Olympus"},
		"overlap":        {Cron: "* * * * *", Overlap: "sometimes"},
		"catchup":        {Cron: "* * * * *", Catchup: "most"},
		"catchup_window": {Cron: "* * * * *", Catchup: "all", CatchupWindow: "-1h"},
		"jitter":         {Cron: "* * * * *", Jitter: "forever"},
	}
	for field, s := range cases {
		ps := s.Problems()
		if len(ps) != 1 || ps[0].Field != field {
			t.Errorf("%+v: problems %v, want one about %s", s, ps, field)
		}
	}
	if ps := (&Spec{Cron: "CRON_TZ=Europe/Paris 0 9 * * *"}).Problems(); len(ps) != 1 || !strings.Contains(ps[0].Message, "timezone field") {
		t.Errorf("a zone inside the cron: %v", ps)
	}
	if ps := (&Spec{Cron: "* * * * *", CatchupWindow: "1h"}).Problems(); len(ps) != 1 {
		t.Errorf("a catch-up window without catchup all: %v", ps)
	}
}

func TestSpecJSON(t *testing.T) {
	plain, _ := json.Marshal(Spec{Cron: "0 * * * *"})
	if string(plain) != `"0 * * * *"` {
		t.Errorf("a plain schedule encodes as %s", plain)
	}
	var s Spec
	if err := json.Unmarshal(plain, &s); err != nil || s.Cron != "0 * * * *" {
		t.Errorf("decoding %s: %+v %v", plain, s, err)
	}
	full := Spec{Cron: "0 * * * *", Timezone: "Europe/Paris", Overlap: OverlapBufferOne, Jitter: "30s",
		Params: map[string]json.RawMessage{"n": json.RawMessage(`1`)}, Paused: true}
	data, _ := json.Marshal(full)
	var back Spec
	if err := json.Unmarshal(data, &back); err != nil || back.Timezone != "Europe/Paris" || !back.Paused ||
		string(back.Params["n"]) != "1" || back.Overlap != OverlapBufferOne {
		t.Errorf("round trip of %s: %+v %v", data, back, err)
	}
}

func TestJitter(t *testing.T) {
	sc := compile(t, Spec{Cron: "* * * * *", Jitter: "10s"})
	seen := map[time.Duration]bool{}
	base := mustTime(t, "2026-01-01T00:00:00Z")
	for i := range 200 {
		nominal := base.Add(time.Duration(i) * time.Minute)
		j := sc.Jitter("report", nominal)
		if j < 0 || j >= 10*time.Second {
			t.Fatalf("jitter %v outside [0, 10s)", j)
		}
		if j != sc.Jitter("report", nominal) {
			t.Fatal("jitter differs between two calls: schedulers would disagree")
		}
		seen[j.Truncate(time.Second)] = true
	}
	if len(seen) < 8 {
		t.Errorf("200 ticks' jitter falls in %d of 10 seconds: not spread", len(seen))
	}
	if j := compile(t, Spec{Cron: "* * * * *"}).Jitter("report", base); j != 0 {
		t.Errorf("no jitter configured, got %v", j)
	}
}
