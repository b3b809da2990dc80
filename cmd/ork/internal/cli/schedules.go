package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/httpapi"
)

// scheduleRegistry is what the schedules commands do with a registry (see registry): a server's
// API, or the schedules bucket next to the registry bucket reached over NATS.
type scheduleRegistry interface {
	listSchedules(ctx context.Context) ([]httpapi.ScheduleSummary, error)
	showSchedule(ctx context.Context, name string) (httpapi.ScheduleDetail, error)
	pauseSchedule(ctx context.Context, name string, paused bool) (httpapi.ScheduleDetail, error)
	triggerSchedule(ctx context.Context, name string) (httpapi.ScheduleTriggered, error)
	backfillSchedule(ctx context.Context, p client.BackfillParams) (httpapi.Backfilled, error)
}

// schedulesHint ends the errors about a workflow that has no schedule here.
const schedulesHint = "(ork schedules list shows the scheduled ones)"

func noScheduleError(name string) error {
	return fmt.Errorf("workflow %q has no schedule: give its file a schedule: and apply it again %s", name, schedulesHint)
}

func (r *apiRegistry) listSchedules(ctx context.Context) ([]httpapi.ScheduleSummary, error) {
	return r.api.Schedules(ctx)
}

func (r *apiRegistry) showSchedule(ctx context.Context, name string) (httpapi.ScheduleDetail, error) {
	d, err := r.api.Schedule(ctx, name)
	return d, r.scheduleError(ctx, name, err)
}

func (r *apiRegistry) pauseSchedule(ctx context.Context, name string, paused bool) (httpapi.ScheduleDetail, error) {
	d, err := r.api.PauseSchedule(ctx, name, paused)
	return d, r.scheduleError(ctx, name, err)
}

func (r *apiRegistry) triggerSchedule(ctx context.Context, name string) (httpapi.ScheduleTriggered, error) {
	t, err := r.api.TriggerSchedule(ctx, name)
	return t, r.scheduleError(ctx, name, err)
}

func (r *apiRegistry) backfillSchedule(ctx context.Context, p client.BackfillParams) (httpapi.Backfilled, error) {
	b, err := r.api.BackfillSchedule(ctx, p.Workflow, p.From, p.To, p.Overlap)
	return b, r.scheduleError(ctx, p.Workflow, err)
}

// scheduleError words the server's 404 of a schedule: the workflow is not registered, or it has
// no schedule (the problem does not say which by its kind, the registry does).
func (r *apiRegistry) scheduleError(ctx context.Context, name string, err error) error {
	if !httpapi.IsProblem(err, "not-found") {
		return err
	}
	if _, werr := r.api.Workflow(ctx, name); httpapi.IsProblem(werr, "not-found") {
		return fmt.Errorf("no registered workflow %q on %s %s", name, r.where(), schedulesHint)
	} else if werr == nil && strings.Contains(err.Error(), "has no schedule") {
		return noScheduleError(name)
	}
	return err
}

func (r *busRegistry) listSchedules(ctx context.Context) ([]httpapi.ScheduleSummary, error) {
	infos, err := r.cl.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.ScheduleSummary, len(infos))
	for i, info := range infos {
		out[i] = httpapi.ScheduleSummaryOf(info)
	}
	return out, nil
}

func (r *busRegistry) showSchedule(ctx context.Context, name string) (httpapi.ScheduleDetail, error) {
	info, err := r.cl.Schedule(ctx, name)
	if err != nil {
		return httpapi.ScheduleDetail{}, r.scheduleError(name, err)
	}
	return httpapi.ScheduleDetailOf(info), nil
}

func (r *busRegistry) pauseSchedule(ctx context.Context, name string, paused bool) (httpapi.ScheduleDetail, error) {
	info, err := r.cl.PauseSchedule(ctx, name, paused, "cli")
	if err != nil {
		return httpapi.ScheduleDetail{}, r.scheduleError(name, err)
	}
	return httpapi.ScheduleDetailOf(info), nil
}

func (r *busRegistry) triggerSchedule(ctx context.Context, name string) (httpapi.ScheduleTriggered, error) {
	if err := r.firing(ctx, name); err != nil {
		return httpapi.ScheduleTriggered{}, err
	}
	f, err := r.cl.TriggerSchedule(ctx, name, "cli")
	if err != nil {
		return httpapi.ScheduleTriggered{}, r.scheduleError(name, err)
	}
	return httpapi.ScheduleTriggered{Workflow: name, ScheduleTick: httpapi.ScheduleTickOf(f)}, nil
}

func (r *busRegistry) backfillSchedule(ctx context.Context, p client.BackfillParams) (httpapi.Backfilled, error) {
	if err := r.firing(ctx, p.Workflow); err != nil {
		return httpapi.Backfilled{}, err
	}
	p.By = "cli"
	fired, err := r.cl.BackfillSchedule(ctx, p)
	if err != nil {
		return httpapi.Backfilled{}, r.scheduleError(p.Workflow, err)
	}
	return httpapi.BackfilledOf(p, fired), nil
}

// firing checks that name has a schedule and that a scheduler fires it: a cluster's does, this
// folder's registry has none while no `ork serve` runs here (with one, the commands reach it), and
// a trigger or backfill left for a later one would fire late.
func (r *busRegistry) firing(ctx context.Context, name string) error {
	if _, err := r.cl.Schedule(ctx, name); err != nil {
		return r.scheduleError(name, err)
	}
	if r.st != nil {
		return fmt.Errorf("nothing fires the schedules of %s: start `ork serve` here, which fires them (this command then reaches it), "+
			"or pass --api URL or --nats URL", r.where())
	}
	return nil
}

func (r *busRegistry) scheduleError(name string, err error) error {
	switch {
	case errors.Is(err, client.ErrNotRegistered):
		return fmt.Errorf("no registered workflow %q in %s %s", name, r.where(), schedulesHint)
	case errors.Is(err, client.ErrNoSchedule):
		return noScheduleError(name)
	}
	return err
}

func newSchedulesCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List, show, pause, resume, trigger and backfill the registered workflows' schedules",
		Long: `The schedules of the registered workflows (a workflow's schedule: field; ork workflows apply registers
it). ` + "`ork serve`" + ` and the scheduler service fire them; ` + "`ork run`" + ` never does.

Where: the server given by --api (or ORK_API_URL), else the ` + "`ork serve`" + ` running in this folder, else the
cluster given by --nats, else this folder's own registry, whose schedules can be read, paused and
resumed, but not triggered or backfilled while no ` + "`ork serve`" + ` runs here. Without a subcommand it lists them.`,
		Example: `  ork schedules                                 list them: policies, next fire, last fire and its run
  ork schedules show nightly                    everything, with the pending ticks and recent skips
  ork schedules pause nightly                   skip its ticks until resumed (never caught up)
  ork schedules resume nightly
  ork schedules trigger nightly                 one run now, outside the cron; prints its id
  ork schedules backfill nightly --from 2024-08-01 --to 2024-08-07T23:59`,
		Args: rootArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return listSchedules(cmd.Context(), cmd.OutOrStdout(), &o) },
	}
	o.flags(cmd)
	cmd.AddCommand(newSchedulesListCmd(), newSchedulesShowCmd(), newSchedulesPauseCmd(true), newSchedulesPauseCmd(false),
		newSchedulesTriggerCmd(), newSchedulesBackfillCmd())
	return cmd
}

func newSchedulesListCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the schedules: policies, pause, next fire, last fire and its run, counts",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return listSchedules(cmd.Context(), cmd.OutOrStdout(), &o) },
	}
	o.flags(cmd)
	return cmd
}

func newSchedulesShowCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a workflow's schedule: its spec, pause, next and last fire, pending ticks and recent skips",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd.Context(), &o, func(ctx context.Context, r registry) error {
				d, err := r.showSchedule(ctx, args[0])
				if err != nil {
					return err
				}
				if o.json {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				printSchedule(cmd.OutOrStdout(), d, time.Now())
				return nil
			})
		},
	}
	o.flags(cmd)
	return cmd
}

func newSchedulesPauseCmd(pause bool) *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Pause a schedule: its ticks are skipped (and recorded), never caught up",
		Long: `Pause a workflow's schedule. Its ticks are skipped, each recorded with reason paused, and are not
caught up on resume; ork schedules trigger still starts a run. The pause holds for the registered
version: applying another version goes back to that version's paused.`,
		Args: exactArgs(1),
	}
	if !pause {
		cmd.Use, cmd.Short = "resume NAME", "Resume a paused schedule: its next tick fires"
		cmd.Long = `Resume a workflow's paused schedule: its next tick fires; the ticks of the pause stay skipped.`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withRegistry(cmd.Context(), &o, func(ctx context.Context, r registry) error {
			d, err := r.pauseSchedule(ctx, args[0], pause)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.json {
				return writeJSON(out, d)
			}
			if d.Paused {
				_, err = fmt.Fprintf(out, "paused %s: its ticks are skipped until ork schedules resume %s\n", d.Workflow, d.Workflow)
				return err
			}
			_, err = fmt.Fprintf(out, "resumed %s: next fire %s\n", d.Workflow, orDash(when(d.Next, time.Now())))
			return err
		})
	}
	o.flags(cmd)
	return cmd
}

func newSchedulesTriggerCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "trigger NAME",
		Short: "Start one run of a schedule now, outside its cron, and print its id",
		Long: `Ask the scheduler that fires the schedules for one run of the workflow now, with the schedule's
parameters, outside its cron and its overlap policy (also while paused). The run's scheduled time is
now. It prints the run's id: the scheduler submits the run a moment later (ork status RUN_ID).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd.Context(), &o, func(ctx context.Context, r registry) error {
				t, err := r.triggerSchedule(ctx, args[0])
				if err != nil {
					return err
				}
				if o.json {
					return writeJSON(cmd.OutOrStdout(), t)
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), t.RunID)
				return err
			})
		},
	}
	o.flags(cmd)
	return cmd
}

type backfillOptions struct {
	registryOptions
	from, to, overlap string
}

func newSchedulesBackfillCmd() *cobra.Command {
	var o backfillOptions
	cmd := &cobra.Command{
		Use:   "backfill NAME --from TIME --to TIME",
		Short: "Fire every tick of a schedule's cron in a past period",
		Long: `Ask the scheduler that fires the schedules for every tick of the cron between --from and --to (both
included), in order, under --overlap (default buffer_all: one run after another). A tick that fired
already names the same run and starts nothing, so a backfill over a period the schedule covered
fires only the missing ticks. --to may not be in the future; at most 1000 ticks at a time.

` + timeArgHelp,
		Example: `  ork schedules backfill nightly --from 2024-08-01 --to 2024-08-07T23:59
  ork schedules backfill hourly --from -6h --to now --overlap allow_all
  ork schedules backfill hourly --from 2024-08-01T00:00:00Z --to 2024-08-01T12:00:00Z`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return backfill(cmd.Context(), cmd.OutOrStdout(), args[0], &o)
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&o.from, "from", "", "the period's start (required)")
	cmd.Flags().StringVar(&o.to, "to", "", "the period's end (required)")
	cmd.Flags().StringVar(&o.overlap, "overlap", "", "the policy between the backfilled runs: skip, buffer_one, buffer_all (default), cancel_other or allow_all")
	return cmd
}

func backfill(ctx context.Context, out io.Writer, name string, o *backfillOptions) error {
	now := time.Now()
	var p client.BackfillParams
	p.Workflow, p.Overlap = name, o.overlap
	for _, f := range []struct {
		flag, value string
		dst         *time.Time
	}{{"--from", o.from, &p.From}, {"--to", o.to, &p.To}} {
		if f.value == "" {
			return usageError(errors.New("ork schedules backfill needs the period: --from TIME and --to TIME"))
		}
		t, err := parseTimeArg(f.value, now)
		if err != nil {
			return usageError(fmt.Errorf("%s: %w", f.flag, err))
		}
		*f.dst = t
	}
	return withRegistry(ctx, &o.registryOptions, func(ctx context.Context, r registry) error {
		b, err := r.backfillSchedule(ctx, p)
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(out, b)
		}
		fmt.Fprintf(out, "backfill of %s: %s from %s to %s (overlap %s)\n", b.Workflow, plural(len(b.Ticks), "tick"),
			b.From.Local().Format(time.DateTime), b.To.Local().Format(time.DateTime), b.Overlap)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TICK\tRUN")
		for _, t := range b.Ticks {
			fmt.Fprintf(tw, "%s\t%s\n", t.Nominal.Local().Format(time.DateTime), t.RunID)
		}
		return tw.Flush()
	})
}

// timeArgHelp tells, in a command's long help, how a TIME is written.
const timeArgHelp = `TIME is an RFC 3339 time (2024-08-01T02:00:00Z, 2024-08-01T04:00:00+02:00), a date or a date and
time on this machine's clock (2024-08-01, 2024-08-01T02:00, "2024-08-01 02:00:05"), a time ago
(-90m, -6h, -2d, -1d12h) or now.`

// localTimeLayouts are the TIMEs on this machine's clock.
var localTimeLayouts = []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// parseTimeArg reads a TIME (timeArgHelp), relative to now.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if ago, ok := strings.CutPrefix(s, "-"); ok {
		if d, err := parseAgo(ago); err == nil {
			return now.Add(-d), nil
		}
	} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range localTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: %s", s, strings.ReplaceAll(timeArgHelp, "\n", " "))
}

// parseAgo reads a duration that may start with days ("2d", "1d12h"), then a Go duration.
func parseAgo(s string) (time.Duration, error) {
	var days time.Duration
	if n, rest, ok := strings.Cut(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return 0, errors.New("bad days")
		}
		days, s = time.Duration(v)*24*time.Hour, rest
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return days + d, nil
}

func listSchedules(ctx context.Context, out io.Writer, o *registryOptions) error {
	return withRegistry(ctx, o, func(ctx context.Context, r registry) error {
		list, err := r.listSchedules(ctx)
		if err != nil {
			return err
		}
		if o.json {
			if list == nil {
				list = []httpapi.ScheduleSummary{}
			}
			return writeJSON(out, list)
		}
		if len(list) == 0 {
			_, err := fmt.Fprintf(out, "no registered workflow has a schedule in %s (a workflow's schedule: field gives it one)\n", r.where())
			return err
		}
		now := time.Now()
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKFLOW\tCRON\tTIMEZONE\tOVERLAP/CATCHUP\tPAUSED\tNEXT FIRE\tLAST FIRE\tLAST RUN\tFIRES\tSKIPPED")
		for _, s := range list {
			last, run := "-", "-"
			if s.LastFire != nil {
				last, run = when(&s.LastFire.Nominal, now), shortRunID(s.LastFire.RunID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Workflow, s.Cron, s.Timezone, s.Overlap, s.Catchup,
				yesNo(s.Paused), orDash(when(s.Next, now)), last, run, s.Fires, s.Skipped)
		}
		return tw.Flush()
	})
}

// printSchedule shows one schedule.
func printSchedule(out io.Writer, d httpapi.ScheduleDetail, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "workflow\t%s (%s)\n", d.Workflow, shortHash(d.Version))
	fmt.Fprintf(tw, "cron\t%s\n", d.Cron)
	fmt.Fprintf(tw, "timezone\t%s\n", d.Timezone)
	fmt.Fprintf(tw, "overlap\t%s\n", d.Overlap)
	catchup := d.Catchup
	if d.CatchupWindow != "" {
		catchup += " (window " + d.CatchupWindow + ")"
	}
	fmt.Fprintf(tw, "catchup\t%s\n", catchup)
	fmt.Fprintf(tw, "jitter\t%s\n", orDash(d.Jitter))
	if len(d.Params) > 0 {
		params, _ := json.Marshal(d.Params)
		fmt.Fprintf(tw, "params\t%s\n", params)
	}
	paused := yesNo(d.Paused)
	switch {
	case d.PausedAt != nil && d.PausedBy != "":
		verb := "resumed"
		if d.Paused {
			verb = "paused"
		}
		paused += fmt.Sprintf(" (%s by %s at %s)", verb, d.PausedBy, d.PausedAt.Local().Format(time.DateTime))
	case d.SpecPaused:
		paused += " (paused: true in the workflow file)"
	}
	fmt.Fprintf(tw, "paused\t%s\n", paused)
	next := orDash(when(d.Next, now))
	if d.Paused && d.Next != nil {
		next += ", skipped while paused"
	}
	fmt.Fprintf(tw, "next fire\t%s\n", next)
	if f := d.LastFire; f != nil {
		fmt.Fprintf(tw, "last fire\t%s, run %s (submitted %s)\n", when(&f.Nominal, now), f.RunID, f.At.Local().Format(time.DateTime))
	} else {
		fmt.Fprintf(tw, "last fire\t-\n")
	}
	if a := d.Active; a != nil && (d.LastFire == nil || a.RunID != d.LastFire.RunID || a.Cancelling) {
		state := ""
		if a.Cancelling {
			state = ", being cancelled"
		}
		fmt.Fprintf(tw, "active run\t%s (tick %s%s)\n", a.RunID, a.Nominal.Local().Format(time.DateTime), state)
	}
	fmt.Fprintf(tw, "last tick handled\t%s\n", orDash(when(d.Last, now)))
	fmt.Fprintf(tw, "fires\t%d\n", d.Fires)
	fmt.Fprintf(tw, "skipped\t%d\n", d.Skipped)
	if d.Requests > 0 {
		fmt.Fprintf(tw, "requests\t%s waiting for the scheduler\n", plural(d.Requests, "trigger or backfill"))
	}
	_ = tw.Flush()
	if len(d.Pending) > 0 {
		fmt.Fprintf(out, "\nPENDING (%s waiting for the active run to end)\n", plural(len(d.Pending), "tick"))
		for _, t := range d.Pending {
			fmt.Fprintln(out, t.Local().Format(time.DateTime))
		}
	}
	if len(d.Skips) > 0 {
		fmt.Fprintln(out, "\nRECENT SKIPS")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REASON\tTICKS\tFROM\tTO\tAT")
		for _, s := range d.Skips {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Reason, s.Count, s.From.Local().Format(time.DateTime),
				s.To.Local().Format(time.DateTime), s.At.Local().Format(time.DateTime))
		}
		_ = tw.Flush()
	}
}

// when is a time as the schedules commands print it: local, and how far from now; "" for none.
func when(t *time.Time, now time.Time) string {
	if t == nil {
		return ""
	}
	d := t.Sub(now)
	rel := "in " + roughly(d)
	if d < 0 {
		rel = roughly(-d) + " ago"
	}
	return t.Local().Format(time.DateTime) + " (" + rel + ")"
}

// roughly is a duration to the unit that matters: 42s, 12m, 3h5m, 2d4h.
func roughly(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d < 2*day:
		if m := d % time.Hour / time.Minute; m > 0 {
			return fmt.Sprintf("%dh%dm", d/time.Hour, m)
		}
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	if h := d % day / time.Hour; h > 0 {
		return fmt.Sprintf("%dd%dh", d/day, h)
	}
	return fmt.Sprintf("%dd", d/day)
}

// shortRunID is the start of a run id that ork status takes as a prefix.
func shortRunID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
