package recorder

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	BatchSizeDefault    = 1000
	BatchWaitDefault    = 10 * time.Millisecond
	RetryMinDefault     = 100 * time.Millisecond
	RetryMaxDefault     = 5 * time.Second
	IsolateAfterDefault = 5
	WriteTimeoutDefault = 30 * time.Second
	// AckWaitDefault is short because a batch being written is kept in progress (heartbeats every
	// third of AckWait), so AckWait only bounds how long the messages a crashed recorder had
	// fetched wait before another recorder gets them.
	AckWaitDefault = 10 * time.Second
	// OrphanDelayDefault is the first delay before an event whose run is not recorded yet comes
	// back; the delay doubles on each delivery up to OrphanDelayMaxDefault.
	OrphanDelayDefault    = 500 * time.Millisecond
	OrphanDelayMaxDefault = 5 * time.Second
	// OrphanMaxAgeSlack is added to twice AckWait to make the default OrphanMaxAge.
	OrphanMaxAgeSlack = 30 * time.Second
	// MaxAckPendingFactor times BatchSize is the default MaxAckPending: room for the batch being
	// written and the next one being pulled.
	MaxAckPendingFactor = 4
)

// Config configures the recorder.
type Config struct {
	// BatchSize is the most messages written in one transaction.
	BatchSize int
	// BatchWait is how long a batch waits for more messages after its first one.
	BatchWait time.Duration
	// RetryMin and RetryMax bound the exponential backoff between failed writes of a batch.
	RetryMin time.Duration
	RetryMax time.Duration
	// IsolateAfter is how many failed writes of a multi-message batch lead to writing it one message
	// at a time, to find and dead-letter a message the store rejects.
	IsolateAfter int
	// WriteTimeout bounds one ApplyBatch call.
	WriteTimeout time.Duration
	// AckWait is the consumers' redelivery timeout. The messages of a batch are marked in progress
	// every third of it until the batch is committed, however long the writes and retries take.
	AckWait time.Duration
	// An event naming an unknown run or task (an orphan) is delivered again, OrphanDelay later at
	// first and twice as late each time up to OrphanDelayMax, until it is OrphanMaxAge old, then
	// dead-lettered. Its run.submitted can be behind it: a recorder that crashed holding the
	// submission leaves it to come back only after AckWait, while the run's later events arrive
	// at once. So OrphanMaxAge must exceed AckWait with margin; it defaults to
	// 2*AckWait + OrphanMaxAgeSlack. Age is measured twice and both must reach OrphanMaxAge: from
	// the message's time on the stream, and as the least time its deliveries can have taken (the
	// sum of the delays before each), so that the old events of a backlog are not dead-lettered
	// on their first delivery.
	OrphanDelay    time.Duration
	OrphanDelayMax time.Duration
	OrphanMaxAge   time.Duration
	// MaxAckPending bounds unacknowledged messages per consumer; 0 means MaxAckPendingFactor*BatchSize.
	MaxAckPending int
	// Metrics, when set, records the recorder's metrics (NewMetrics); nil records nothing.
	Metrics *Metrics
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.BatchSize == 0 {
		c.BatchSize = BatchSizeDefault
	}
	if c.BatchWait == 0 {
		c.BatchWait = BatchWaitDefault
	}
	if c.RetryMin == 0 {
		c.RetryMin = RetryMinDefault
	}
	if c.RetryMax == 0 {
		c.RetryMax = RetryMaxDefault
	}
	if c.IsolateAfter == 0 {
		c.IsolateAfter = IsolateAfterDefault
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = WriteTimeoutDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.OrphanDelay == 0 {
		c.OrphanDelay = OrphanDelayDefault
	}
	if c.OrphanDelayMax == 0 {
		c.OrphanDelayMax = max(OrphanDelayMaxDefault, c.OrphanDelay)
	}
	if c.OrphanMaxAge == 0 {
		c.OrphanMaxAge = 2*c.AckWait + OrphanMaxAgeSlack
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = MaxAckPendingFactor * c.BatchSize
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 1 || c.BatchSize > 100_000:
		return fmt.Errorf("recorder: BatchSize must be 1..100000, got %d", c.BatchSize)
	case c.BatchWait < 0:
		return fmt.Errorf("recorder: BatchWait must not be negative, got %s", c.BatchWait)
	case c.RetryMin <= 0:
		return fmt.Errorf("recorder: RetryMin must be positive, got %s", c.RetryMin)
	case c.RetryMax < c.RetryMin:
		return fmt.Errorf("recorder: RetryMax (%s) must be at least RetryMin (%s)", c.RetryMax, c.RetryMin)
	case c.IsolateAfter < 1:
		return fmt.Errorf("recorder: IsolateAfter must be positive, got %d", c.IsolateAfter)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("recorder: WriteTimeout must be positive, got %s", c.WriteTimeout)
	case c.AckWait < time.Second:
		return fmt.Errorf("recorder: AckWait must be at least 1s, got %s", c.AckWait)
	case c.OrphanDelay <= 0:
		return fmt.Errorf("recorder: OrphanDelay must be positive, got %s", c.OrphanDelay)
	case c.OrphanDelayMax < c.OrphanDelay:
		return fmt.Errorf("recorder: OrphanDelayMax (%s) must be at least OrphanDelay (%s)", c.OrphanDelayMax, c.OrphanDelay)
	case c.OrphanMaxAge <= 0:
		return fmt.Errorf("recorder: OrphanMaxAge must be positive, got %s", c.OrphanMaxAge)
	case c.MaxAckPending < c.BatchSize:
		return fmt.Errorf("recorder: MaxAckPending (%d) must be at least BatchSize (%d)", c.MaxAckPending, c.BatchSize)
	}
	return nil
}

var errNilDependency = errors.New("recorder: bus, store and logger are required")

// orphanDelay is the delay before the next delivery of an orphan delivered n times.
func (c Config) orphanDelay(n uint64) time.Duration {
	d := c.OrphanDelay
	for i := uint64(1); i < n && d < c.OrphanDelayMax; i++ {
		d *= 2
	}
	return min(d, c.OrphanDelayMax)
}

// orphanExpired reports whether an orphan delivered n times (this delivery included), stored on
// the stream age ago, is to be dead-lettered: both its age and the least time its n-1 earlier
// deliveries took reach OrphanMaxAge.
func (c Config) orphanExpired(n uint64, age time.Duration) bool {
	if age < c.OrphanMaxAge {
		return false
	}
	var waited time.Duration
	for k := uint64(1); k < n; k++ {
		waited += c.orphanDelay(k)
		if waited >= c.OrphanMaxAge {
			return true
		}
	}
	return false
}
