package main

import (
	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/services/scheduler"
)

// flags defines the scheduler's own flags, each defaulting to its ORK_SCHEDULER_* variable.
func flags(cfg *scheduler.Config) func(*envflag.Set) {
	return func(s *envflag.Set) {
		s.IntVar(&cfg.Concurrency, "concurrency", "ORK_SCHEDULER_CONCURRENCY", scheduler.ConcurrencyDefault,
			"events handled at once")
		s.IntVar(&cfg.MaxLostAttempts, "max-lost-attempts", "ORK_SCHEDULER_MAX_LOST_ATTEMPTS", scheduler.MaxLostAttemptsDefault,
			"lost attempts of a task re-dispatched without using up retries")
		s.DurationVar(&cfg.ReconcileInterval, "reconcile-interval", "ORK_SCHEDULER_RECONCILE_INTERVAL", scheduler.ReconcileIntervalDefault,
			"period of the reconciler's sweep; negative disables it")
		s.DurationVar(&cfg.NoExecutorTimeout, "no-executor-timeout", "ORK_SCHEDULER_NO_EXECUTOR_TIMEOUT", scheduler.NoExecutorTimeoutDefault,
			"how long a dispatch waits for an executor type with no instance online")
		s.DurationVar(&cfg.LostGrace, "lost-grace", "ORK_SCHEDULER_LOST_GRACE", scheduler.LostGraceDefault,
			"added to a task's timeout before an attempt whose dispatch is gone is lost")
		s.DurationVar(&cfg.StallTimeout, "stall-timeout", "ORK_SCHEDULER_STALL_TIMEOUT", scheduler.StallTimeoutDefault,
			"how long a running run may go unchanged with nothing in flight before the reconciler re-drives it")
		s.StringVar(&cfg.Instance, "instance", "ORK_SCHEDULER_INSTANCE", "",
			"this instance's name in the reconciler's and the schedules' leases (a random id when empty)")
		s.DurationVar(&cfg.ScheduleLease, "schedule-lease", "ORK_SCHEDULER_SCHEDULE_LEASE", scheduler.ScheduleLeaseDefault,
			"how often the instance firing the schedules renews its lease (held 3x as long); negative: never fire schedules here")
	}
}
