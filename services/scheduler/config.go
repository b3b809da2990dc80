package scheduler

import (
	"errors"
	"fmt"
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// Defaults of Config.
const (
	DurableDefault     = event.ConsumerScheduler
	ConcurrencyDefault = 64
	AckWaitDefault     = 30 * time.Second
	CASRetriesDefault  = 16
	CachedRunsDefault  = 4096
	OpTimeoutDefault   = 10 * time.Second

	ReconcileIntervalDefault = 10 * time.Second
	NoExecutorTimeoutDefault = time.Minute
	LostGraceDefault         = 30 * time.Second
	StallTimeoutDefault      = time.Minute
	MaxRedrivesDefault       = 1000
	ScheduleLeaseDefault     = time.Second
)

// Config configures a scheduler Service.
type Config struct {
	// Durable is the name of the consumer every scheduler instance shares.
	Durable string
	// Concurrency bounds the events handled at once by this instance.
	Concurrency int
	// AckWait is how long an event may stay unacknowledged before it is redelivered.
	AckWait time.Duration
	// Backoff is the retry delay policy of failed tasks.
	Backoff Backoff
	// CASRetries bounds the reloads after a compare-and-swap conflict on one event.
	CASRetries int
	// CachedRuns bounds the idle runs whose state and plan stay in memory. The cache saves a KV
	// read per event; a stale entry is caught by the compare-and-swap and reloaded.
	CachedRuns int
	// OpTimeout bounds the handling of one event, KV writes and publishes included. A request in
	// flight when the connection to NATS is lost does not wait for it: it is cancelled at once and
	// the event retried after the reconnect (bus.OpContext), so OpTimeout only bounds a server
	// that stays connected but does not answer.
	OpTimeout time.Duration
	// MaxLostAttempts bounds the lost attempts of one task that are re-dispatched without using
	// up its retries.
	MaxLostAttempts int
	// ReconcileInterval is the period of the reconciler's sweep; a negative value disables the
	// reconciler (and the max-deliveries advisories) in this instance.
	ReconcileInterval time.Duration
	// NoExecutorTimeout is how long a dispatch may wait for an executor type with no instance
	// online before the task fails (reason no_executor).
	NoExecutorTimeout time.Duration
	// LostGrace is added to a task's timeout before an in-flight attempt whose dispatch message is
	// gone, with no terminal event, is declared lost.
	LostGrace time.Duration
	// StallTimeout is how long a running run may go without a change of its state, with nothing
	// in flight, before the reconciler re-drives it from its stored state.
	StallTimeout time.Duration
	// MaxRedrives bounds the stalled runs re-driven by one sweep; the rest wait for the next.
	MaxRedrives int
	// ScheduleLease is how often the instance that fires the schedules renews its lease (held for
	// three times as long), and how often the others try to take it; a negative value: this
	// instance never fires schedules.
	ScheduleLease time.Duration
	// ScheduleGrace is how late a schedule's tick may fire and still count as on time; later ones
	// were missed and follow the schedule's catch-up policy (schedule.LateGrace when 0).
	ScheduleGrace time.Duration
	// Instance names this instance in the reconciler lease; a random id when empty.
	Instance string
	// Metrics, when set, records the scheduler's metrics (NewMetrics); nil records nothing.
	Metrics *Metrics
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Durable == "" {
		c.Durable = DurableDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	c.Backoff = backoffWithDefaults(c.Backoff)
	if c.CASRetries == 0 {
		c.CASRetries = CASRetriesDefault
	}
	if c.CachedRuns == 0 {
		c.CachedRuns = CachedRunsDefault
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = OpTimeoutDefault
	}
	if c.MaxLostAttempts == 0 {
		c.MaxLostAttempts = MaxLostAttemptsDefault
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = ReconcileIntervalDefault
	}
	if c.NoExecutorTimeout == 0 {
		c.NoExecutorTimeout = NoExecutorTimeoutDefault
	}
	if c.LostGrace == 0 {
		c.LostGrace = LostGraceDefault
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = StallTimeoutDefault
	}
	if c.MaxRedrives == 0 {
		c.MaxRedrives = MaxRedrivesDefault
	}
	if c.ScheduleLease == 0 {
		c.ScheduleLease = ScheduleLeaseDefault
	}
	if c.Instance == "" {
		c.Instance = event.NewID()
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Durable == "":
		return errors.New("scheduler: Durable is required")
	case c.Concurrency < 1:
		return fmt.Errorf("scheduler: Concurrency must be positive, got %d", c.Concurrency)
	case c.AckWait < time.Second:
		return fmt.Errorf("scheduler: AckWait must be at least 1s, got %s", c.AckWait)
	case c.CASRetries < 1:
		return fmt.Errorf("scheduler: CASRetries must be positive, got %d", c.CASRetries)
	case c.CachedRuns < 0:
		return fmt.Errorf("scheduler: CachedRuns must not be negative, got %d", c.CachedRuns)
	case c.OpTimeout <= 0:
		return fmt.Errorf("scheduler: OpTimeout must be positive, got %s", c.OpTimeout)
	case c.MaxLostAttempts < 1:
		return fmt.Errorf("scheduler: MaxLostAttempts must be positive, got %d", c.MaxLostAttempts)
	case c.NoExecutorTimeout <= 0:
		return fmt.Errorf("scheduler: NoExecutorTimeout must be positive, got %s", c.NoExecutorTimeout)
	case c.LostGrace <= 0:
		return fmt.Errorf("scheduler: LostGrace must be positive, got %s", c.LostGrace)
	case c.StallTimeout <= 0:
		return fmt.Errorf("scheduler: StallTimeout must be positive, got %s", c.StallTimeout)
	case c.MaxRedrives < 1:
		return fmt.Errorf("scheduler: MaxRedrives must be positive, got %d", c.MaxRedrives)
	}
	if err := c.Backoff.Validate(); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}
