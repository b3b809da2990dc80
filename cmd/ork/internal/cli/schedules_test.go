package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/store"
)

// scheduledFlows writes, under dir/flows, a workflow firing every second, an hourly one and one
// without a schedule.
func scheduledFlows(t *testing.T, dir string) {
	t.Helper()
	flows := map[string]string{
		"every_second": `schedule: "* * * * * *"`,
		"hourly":       `schedule: {cron: "0 * * * *", overlap: allow_all}`,
		"plain":        ``,
	}
	if err := os.MkdirAll(filepath.Join(dir, "flows"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, sched := range flows {
		src := "name: " + name + "\n" + sched + "\ntasks:\n  a: {executor: noop}\n"
		if err := os.WriteFile(filepath.Join(dir, "flows", name+".yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// getJSON reads path of the server at base into v and returns the status.
func getJSON(t *testing.T, base, path string, v any) int {
	t.Helper()
	res, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

// waitScheduledRun waits until the server at base has run id, fired by a schedule.
func waitScheduledRun(t *testing.T, base, id string) {
	t.Helper()
	var run httpapi.RunDetail
	poll.UntilWithin(t, 30*time.Second, "run "+id+" on the server", func() bool {
		return getJSON(t, base, "/api/v1/runs/"+id, &run) == http.StatusOK
	})
	if run.TriggeredBy != "schedule" || run.ScheduledFor == nil {
		t.Errorf("run %s: triggered_by %q, scheduled_for %v", id, run.TriggeredBy, run.ScheduledFor)
	}
}

var runIDLine = regexp.MustCompile(`(?m)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// As a user would, next to `ork serve`: list and show the schedules of the applied workflows, see
// the cron fire, pause and resume, trigger a run, backfill past hours; bad input is refused with a
// sentence saying what is wrong.
func TestSchedulesWithServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scheduledFlows(t, dir)
	info, _ := startServe(t, dir, "--rate-limit=-1") // the test polls
	ork(t, dir, "workflows", "apply", "flows/").expect(t, 0)

	r := ork(t, dir, "schedules", "list")
	r.expect(t, 0)
	for _, want := range []string{"WORKFLOW", "NEXT FIRE", "every_second  * * * * * *", "hourly", "0 * * * *", "UTC", "skip/latest", "allow_all/latest", "(in "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("schedules list does not show %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "plain") {
		t.Errorf("schedules list shows a workflow without a schedule:\n%s", r.stdout)
	}
	if bare := ork(t, dir, "schedules"); bare.stdout == "" || bare.code != 0 {
		t.Errorf("ork schedules without a subcommand: exit %d\n%s%s", bare.code, bare.stdout, bare.stderr)
	}
	r = ork(t, t.TempDir(), "schedules", "list", "--json", "--api", info.API)
	r.expect(t, 0)
	var list []httpapi.ScheduleSummary
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 || list[0].Workflow != "every_second" || list[1].Overlap != "allow_all" {
		t.Fatalf("schedules list --json --api: %v\n%s", err, r.stdout)
	}

	// The cron fires: show names the last fire's run, which exists.
	var shown httpapi.ScheduleDetail
	poll.UntilWithin(t, 30*time.Second, "every_second to fire", func() bool {
		return getJSON(t, info.API, "/api/v1/schedules/every_second", &shown) == http.StatusOK && shown.LastFire != nil
	})
	waitScheduledRun(t, info.API, shown.LastFire.RunID)
	r = ork(t, dir, "schedules", "show", "every_second")
	r.expect(t, 0)
	for _, want := range []string{"cron", "* * * * * *", "overlap", "skip", "catchup", "latest", "paused", "no", "next fire", "last fire", ", run " + shown.LastFire.RunID[:8]} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show does not show %q:\n%s", want, r.stdout)
		}
	}

	// Pause, then resume: show says so, and who.
	r = ork(t, dir, "schedules", "pause", "every_second")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "paused every_second: its ticks are skipped until ork schedules resume every_second") {
		t.Errorf("pause:\n%s", r.stdout)
	}
	poll.UntilWithin(t, 30*time.Second, "a tick skipped while paused", func() bool {
		getJSON(t, info.API, "/api/v1/schedules/every_second", &shown)
		return len(shown.Skips) > 0 && shown.Skips[len(shown.Skips)-1].Reason == "paused"
	})
	r = ork(t, dir, "schedules", "show", "every_second")
	if !regexp.MustCompile(`paused +yes \(paused by api:local at `).MatchString(r.stdout) || !strings.Contains(r.stdout, "skipped while paused") ||
		!regexp.MustCompile(`RECENT SKIPS\nREASON +TICKS +FROM +TO +AT\npaused +\d+ `).MatchString(r.stdout) {
		t.Errorf("show after pause:\n%s", r.stdout)
	}
	r = ork(t, dir, "schedules", "resume", "every_second")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "resumed every_second: next fire ") {
		t.Errorf("resume:\n%s", r.stdout)
	}
	if r = ork(t, dir, "schedules", "show", "every_second"); !regexp.MustCompile(`paused +no \(resumed by api:local at `).MatchString(r.stdout) {
		t.Errorf("show after resume:\n%s", r.stdout)
	}
	ork(t, dir, "schedules", "pause", "every_second").expect(t, 0) // enough runs

	// A trigger prints the run, which the scheduler submits.
	r = ork(t, dir, "schedules", "trigger", "hourly")
	r.expect(t, 0)
	id := strings.TrimSpace(r.stdout)
	if !runIDLine.MatchString(id) {
		t.Fatalf("trigger printed %q, want a run id", r.stdout)
	}
	waitScheduledRun(t, info.API, id)
	if r = ork(t, dir, "status", id); !strings.Contains(r.stdout, "triggered by   schedule") {
		t.Errorf("status of the triggered run:\n%s%s", r.stdout, r.stderr)
	}

	// Backfill three past hours, given on this machine's clock: three ticks and their runs; the
	// same in RFC 3339 names the same runs.
	hour := time.Now().Truncate(time.Hour)
	from, to := hour.Add(-3*time.Hour), hour.Add(-time.Hour)
	r = ork(t, dir, "schedules", "backfill", "hourly", "--from", from.Local().Format("2006-01-02T15:04"), "--to", to.Local().Format("2006-01-02 15:04"))
	r.expect(t, 0)
	ids := runIDs(r.stdout)
	if !strings.Contains(r.stdout, "backfill of hourly: 3 ticks from ") || !strings.Contains(r.stdout, "(overlap buffer_all)") || len(ids) != 3 {
		t.Fatalf("backfill:\n%s", r.stdout)
	}
	for _, id := range ids {
		waitScheduledRun(t, info.API, id)
	}
	r = ork(t, t.TempDir(), "schedules", "backfill", "hourly", "--api", info.API, "--json",
		"--from", from.UTC().Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--overlap", "allow_all")
	r.expect(t, 0)
	var bf httpapi.Backfilled
	if err := json.Unmarshal([]byte(r.stdout), &bf); err != nil || len(bf.Ticks) != 3 || bf.Overlap != "allow_all" {
		t.Fatalf("backfill --json: %v\n%s", err, r.stdout)
	}
	for i, tk := range bf.Ticks {
		if tk.RunID != ids[i] || !tk.Nominal.Equal(from.Add(time.Duration(i)*time.Hour)) {
			t.Errorf("tick %d backfilled again: %+v, want run %s at %v", i, tk, ids[i], from.Add(time.Duration(i)*time.Hour))
		}
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"show", "nope"}, 1, `error: no registered workflow "nope" on the server at ` + info.API + " (ork schedules list shows the scheduled ones)"},
		{[]string{"show", "plain"}, 1, `error: workflow "plain" has no schedule: give its file a schedule: and apply it again`},
		{[]string{"trigger", "plain"}, 1, `workflow "plain" has no schedule`},
		{[]string{"pause", "nope"}, 1, `no registered workflow "nope"`},
		{[]string{"backfill", "hourly", "--from", "yesterday", "--to", "now"}, 2, `error: --from: "yesterday" is not a time: TIME is an RFC 3339 time`},
		{[]string{"backfill", "hourly", "--to", "now"}, 2, "needs the period: --from TIME and --to TIME"},
		{[]string{"backfill", "hourly", "--from", "now", "--to", "-1h"}, 1, "is before from"},
		{[]string{"backfill", "hourly", "--from", "-1h", "--to", "+1h"}, 2, `--to: "+1h" is not a time`},
		{[]string{"backfill", "hourly", "--from", "-2h", "--to", "now", "--overlap", "sometimes"}, 1, `unknown overlap policy "sometimes"`},
		{[]string{"backfill", "every_second", "--from", "-2h", "--to", "-1h"}, 1, "more than 1000 ticks"},
		{[]string{"pause"}, 2, "accepts 1 arg"},
	} {
		r := ork(t, dir, append([]string{"schedules"}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("ork schedules %s: exit %d, want %d with %q\n%s", strings.Join(c.args, " "), r.code, c.code, c.want, r.stderr)
		}
	}
}

// runIDs are the run ids that end the lines of out.
func runIDs(out string) []string {
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && runIDLine.MatchString(f[len(f)-1]) {
			ids = append(ids, f[len(f)-1])
		}
	}
	return ids
}

// Without a server, this folder's registry: its schedules are read, paused and resumed, but
// nothing fires them, so a trigger or a backfill is refused, saying what to do.
func TestSchedulesWithoutServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scheduledFlows(t, dir)
	ork(t, dir, "workflows", "apply", "flows/hourly.yaml", "flows/plain.yaml").expect(t, 0)
	r := ork(t, dir, "schedules", "list")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "hourly") || !strings.Contains(r.stdout, "allow_all/latest") {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = ork(t, dir, "schedules", "pause", "hourly", "--json")
	r.expect(t, 0)
	var d httpapi.ScheduleDetail
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || !d.Paused || d.PausedBy != "cli" {
		t.Fatalf("pause --json: %v\n%s", err, r.stdout)
	}
	if r = ork(t, dir, "schedules", "show", "hourly"); !regexp.MustCompile(`paused +yes \(paused by cli at `).MatchString(r.stdout) {
		t.Errorf("show after pause:\n%s", r.stdout)
	}
	ork(t, dir, "schedules", "resume", "hourly").expect(t, 0)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"trigger", "hourly"}, "nothing fires the schedules of this folder's registry"},
		{[]string{"backfill", "hourly", "--from", "-3h", "--to", "-1h"}, "start `ork serve` here, which fires them"},
		{[]string{"show", "nope"}, `no registered workflow "nope" in this folder's registry`},
		{[]string{"trigger", "plain"}, `workflow "plain" has no schedule`},
	} {
		r := ork(t, dir, append([]string{"schedules"}, c.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("ork schedules %s: exit %d, want 1 with %q\n%s", strings.Join(c.args, " "), r.code, c.want, r.stderr)
		}
	}
}

// On a cluster (--nats) whose scheduler fires the schedules: a trigger and a backfill name the
// runs it submits.
func TestSchedulesOnCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scheduledFlows(t, dir)
	stk, err := embedded.Start(context.Background(), embedded.Config{DataDir: filepath.Join(dir, "data"), Port: -1, Schedules: true}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stk.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	nats := []string{"--nats", stk.Server.ClientURL()}
	wantCLI(t, 0, append([]string{"workflows", "apply", filepath.Join(dir, "flows", "hourly.yaml")}, nats...))
	r := wantCLI(t, 0, append([]string{"schedules", "trigger", "hourly"}, nats...))
	ids := []string{strings.TrimSpace(r.stdout)}
	hour := time.Now().UTC().Truncate(time.Hour)
	r = wantCLI(t, 0, append([]string{"schedules", "backfill", "hourly", "--from", hour.Add(-2 * time.Hour).Format(time.RFC3339),
		"--to", hour.Add(-time.Hour).Format(time.RFC3339)}, nats...), "backfill of hourly: 2 ticks")
	ids = append(ids, runIDs(r.stdout)...)
	if len(ids) != 3 {
		t.Fatalf("run ids %v, want the trigger's and two backfilled", ids)
	}
	for _, id := range ids {
		poll.UntilWithin(t, 30*time.Second, "run "+id+" in the cluster's database", func() bool {
			run, err := stk.Store.RunGet(t.Context(), store.RunGetParams{ID: id})
			return err == nil && run.TriggeredBy == "schedule"
		})
	}
	wantCLI(t, 0, append([]string{"schedules", "show", "hourly"}, nats...), "last fire")
}

// Reading schedules needs a read token; pausing, resuming, triggering and backfilling one needs
// the submit scope, and a read token is refused saying so.
func TestScheduleTokensWithServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scheduledFlows(t, dir)
	token := func(scope string) string {
		r := ork(t, dir, "token", "create", "--scope", scope, "--name", scope+"er")
		r.expect(t, 0)
		for _, f := range strings.Fields(r.stdout) {
			if strings.HasPrefix(f, "ork_") {
				return f
			}
		}
		t.Fatalf("token create:\n%s", r.stdout)
		return ""
	}
	admin, read := []string{"ORK_API_TOKEN=" + token("admin")}, []string{"ORK_API_TOKEN=" + token("read")}
	startServe(t, dir, "--tokens")
	orkEnv(t, dir, admin, "workflows", "apply", "flows/hourly.yaml").expect(t, 0)
	orkEnv(t, dir, read, "schedules", "list").expect(t, 0)
	orkEnv(t, dir, read, "schedules", "show", "hourly").expect(t, 0)
	if r := ork(t, dir, "schedules", "list"); r.code != 1 || !strings.Contains(r.stderr, "requires a token") {
		t.Errorf("list without a token: exit %d %s", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"pause", "hourly"},
		{"resume", "hourly"},
		{"trigger", "hourly"},
		{"backfill", "hourly", "--from", "-3h", "--to", "-1h"},
	} {
		r := orkEnv(t, dir, read, append([]string{"schedules"}, args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "this needs a token with scope submit; this one has read") {
			t.Errorf("ork schedules %s with a read token: exit %d %s", args[0], r.code, r.stderr)
		}
	}
	orkEnv(t, dir, admin, "schedules", "pause", "hourly").expect(t, 0)
}

// TIMEs: RFC 3339, this machine's clock, a time ago, now; anything else is refused.
func TestParseTimeArg(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 8, 1, 12, 30, 0, 0, time.UTC)
	local := func(s string) time.Time {
		tm, err := time.ParseInLocation(time.DateTime, s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for in, want := range map[string]time.Time{
		"now":                       now,
		"-90m":                      now.Add(-90 * time.Minute),
		"-2d":                       now.Add(-48 * time.Hour),
		"-1d12h":                    now.Add(-36 * time.Hour),
		"2024-07-01T02:00:00Z":      time.Date(2024, 7, 1, 2, 0, 0, 0, time.UTC),
		"2024-07-01T04:00:00+02:00": time.Date(2024, 7, 1, 2, 0, 0, 0, time.UTC),
		"2024-07-01T02:00:00.5Z":    time.Date(2024, 7, 1, 2, 0, 0, 5e8, time.UTC),
		"2024-07-01":                local("2024-07-01 00:00:00"),
		"2024-07-01T02:00":          local("2024-07-01 02:00:00"),
		"2024-07-01 02:00":          local("2024-07-01 02:00:00"),
		"2024-07-01 02:00:05":       local("2024-07-01 02:00:05"),
	} {
		got, err := parseTimeArg(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeArg(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-", "-1x", "-d", "+1h", "2024-13-01", "01/07/2024", "-1h-1m"} {
		if _, err := parseTimeArg(in, now); err == nil || !strings.Contains(err.Error(), "is not a time") {
			t.Errorf("parseTimeArg(%q): %v, want it refused", in, err)
		}
	}
}

// Times as the schedules commands print them: local, and roughly how far from now.
func TestWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 8, 1, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		42 * time.Second:              "in 42s",
		-12*time.Minute - time.Second: "12m ago",
		3*time.Hour + 5*time.Minute:   "in 3h5m",
		-5 * time.Hour:                "5h ago",
		50*time.Hour + 30*time.Minute: "in 2d2h",
		72 * time.Hour:                "in 3d",
		0:                             "in 0s",
	} {
		at := now.Add(d)
		if got := when(&at, now); got != at.Local().Format(time.DateTime)+" ("+want+")" {
			t.Errorf("when(now%+v) = %q, want … (%s)", d, got, want)
		}
	}
	if when(nil, now) != "" {
		t.Error("when(nil) is not empty")
	}
}
