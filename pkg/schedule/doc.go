// Package schedule is the meaning of a workflow's `schedule:`: its fields (Spec), its fire times
// (Schedule.Next, in the schedule's time zone, with the daylight-saving rules documented there)
// and its policies (Engine): what a tick does while the previous run still runs (overlap), what
// happens to the ticks missed while no scheduler ran (catch-up), pauses, triggers and backfills.
//
// Everything here is pure: the caller gives the time and says whether the schedule's last run is
// still running, and gets back the nominal times to fire and the run to cancel. The scheduler
// service (services/scheduler, schedules.go) keeps the State of every schedule in the
// ork_schedules bucket and submits the runs, each with the idempotency key Key(workflow, nominal):
// several schedulers, restarts and redeliveries name the same run for the same tick, which starts
// once.
package schedule

import "time"

// Key is the idempotency key of a workflow's run for the tick at nominal.
func Key(workflow string, nominal time.Time) string {
	return "schedule/" + workflow + "/" + nominal.UTC().Format(time.RFC3339Nano)
}
